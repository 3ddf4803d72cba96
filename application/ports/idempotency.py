"""Idempotency keys: the first response to a create, kept under the client's key for a while."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    """A response as it was sent: status code, body (JSON text, byte for byte) and Location."""

    status: int
    body: str
    location: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotencyKey:
    """The key a request came with, and what the create must record under it.

    `scope` separates clients (one built-in scope for now; a tenant later), so a key is unique
    per (scope, key). `fingerprint` identifies the request (its route and canonical body): the
    same key with another fingerprint is another request. `respond` renders the response the
    client gets for the task once the store has given it its id."""

    scope: str
    key: str
    fingerprint: str
    respond: Callable[[Task], StoredResponse]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotencyRecord:
    scope: str
    key: str
    fingerprint: str
    task_id: int
    response: StoredResponse
    created_at: datetime
    expires_at: datetime


class IdempotencyKeys(Protocol):
    """The records of keyed creates. Reads and writes join the unit of work's transaction, so a
    record is committed with the task it answers for, or not at all."""

    def get(self, scope: str, key: str, now: datetime) -> IdempotencyRecord | None:
        """The record under (scope, key) if it has not expired at `now` (an expired one, not yet
        pruned, is as good as gone), else None."""

    def add_all(self, records: Sequence[IdempotencyRecord], now: datetime) -> set[tuple[str, str]]:
        """Store each record unless (scope, key) already holds one that has not expired at
        `now` (an expired one is replaced); one statement for all of them. Answers the
        (scope, key) pairs stored; a pair missing from the answer was taken and is unchanged.

        If another transaction is storing the same pair, this waits for it to end: taken if it
        commits, stored if it rolls back. Raises ValueError if two records share a pair."""

    def prune(self, now: datetime, limit: int) -> int:
        """Delete at most `limit` records expired at `now`, oldest expiry first (rows another
        transaction holds are skipped); answers how many were deleted."""

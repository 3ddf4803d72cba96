"""Stored API keys: their prefix and keyed hash, never the key itself."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.access import ApiKey


class ApiKeys(Protocol):
    """The keys clients authenticate with. Reads and writes join the unit of work's transaction."""

    def add(self, key: ApiKey) -> None:
        """Store a new key and give it its id. Raises if its prefix is already taken."""

    def by_prefix(self, prefix: str) -> ApiKey | None:
        """The key stored under `prefix` (revoked ones included), or None: one indexed read."""

    def all(self) -> list[ApiKey]:
        """Every stored key, revoked ones included, oldest first."""

    def revoke(self, key_id: int, now: datetime) -> ApiKey | None:
        """Mark the key revoked at `now` (a key revoked before keeps its first revocation);
        the key as stored afterwards, or None if there is no such key."""

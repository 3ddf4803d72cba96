"""Dispatch of wake-up messages to workers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.priority import Priority


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The whole content of a message: which task, and for which dispatch number."""

    task_id: int
    dispatch_no: int
    priority: Priority


class QueueUnavailable(Exception):
    """The broker could not be reached; nothing is known to have been published.

    Its message names the broker's address (`host:port`) and the reason, never a credential,
    so it may be shown to clients."""


class TaskQueue(Protocol):
    """The broker. A message only wakes a worker up: losing one loses no task, since the store
    knows what is queued, and a duplicate runs nothing twice, since claims are conditional.
    Dispatches published together may share a message; a queue delivers messages first in,
    first out, and a message's dispatches together."""

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """Publish each dispatch on its priority's queue, in their order. Raises
        QueueUnavailable if the broker cannot be reached (some of the messages may have been
        published all the same)."""

    def pending(self, priority: Priority) -> int:
        """Messages waiting on the priority's queue. Raises QueueUnavailable."""

    def waiting_dispatches(self, priority: Priority) -> int:
        """At least as many as the dispatches the messages waiting on the priority's queue carry
        (a message carries one or several): exact while few messages wait, an upper bound
        beyond. Raises QueueUnavailable."""

    def consumers(self) -> Mapping[Priority, int]:
        """How many workers consume each priority's queue. Raises QueueUnavailable."""

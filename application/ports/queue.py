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
    knows what is queued, and a duplicate runs nothing twice, since claims are conditional."""

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """Publish each dispatch on its priority's queue. Raises QueueUnavailable if the broker
        cannot be reached (some of the messages may have been published all the same)."""

    def pending(self, priority: Priority) -> int:
        """Messages waiting on the priority's queue. Raises QueueUnavailable."""

    def consumers(self) -> Mapping[Priority, int]:
        """How many workers consume each priority's queue. Raises QueueUnavailable."""

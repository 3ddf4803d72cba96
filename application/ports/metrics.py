"""What the use cases report about their work, for whoever watches it (Prometheus, a test)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from domain.priority import Priority
from domain.task import Task


class AttemptResult(StrEnum):
    """How an attempt (or the message that would have started one) ended."""

    SUCCESS = "success"
    RETRIED = "retried"
    """It raised and the task is queued again, after a backoff."""
    FAILED = "failed"
    """It raised with the budget spent, or permanently: the task failed."""
    LOST = "lost"
    """Its lease expired before its outcome was written: the outcome was dropped."""
    STALE_DROPPED = "stale_dropped"
    """Nothing ran: the message was stale, a duplicate, or named no task."""
    RELEASED = "released"
    """Nothing ran: the task was claimed, but its message's time ran out before its turn, and
    the claim was given back (the task is queued again, the attempt not counted)."""


class Metrics(Protocol):
    """Counters and timings of the use cases. Every method is cheap (no I/O beyond a local
    write) and never raises: a metric must not fail the work it measures."""

    @property
    def counts_inversions(self) -> bool:
        """Whether `attempt_started` wants its `inversion` flag: finding it costs a query."""

    def tasks_created(self, tasks: Sequence[Task]) -> None:
        """Tasks accepted and committed (counted by priority and type)."""

    def attempt_started(
        self, priority: Priority, *, lateness: float, wait: float, inversion: bool
    ) -> None:
        """An attempt claimed its task. `lateness`: claim time minus `scheduled_for`, seconds
        (negative when early); `wait`: claim time minus `created_at`, seconds; `inversion`:
        a task of a higher priority had been due and unclaimed for more than 100 ms."""

    def attempt_finished(
        self, priority: Priority | None, result: AttemptResult, run: float
    ) -> None:
        """An attempt ended (or a message was dropped, `run` 0); `run` in seconds. `priority`
        is None only for a dropped message whose queue is unknown."""

    def dispatch_round(
        self, seconds: float, *, published: int, republished_lost: int, expired_leases: int
    ) -> None:
        """One dispatcher round took `seconds` and moved these many tasks."""


class NullMetrics(Metrics):
    """Counts nothing: for runs with metrics off, and for code that does not care."""

    @property
    def counts_inversions(self) -> bool:
        return False

    def tasks_created(self, tasks: Sequence[Task]) -> None:
        pass

    def attempt_started(
        self, priority: Priority, *, lateness: float, wait: float, inversion: bool
    ) -> None:
        pass

    def attempt_finished(
        self, priority: Priority | None, result: AttemptResult, run: float
    ) -> None:
        pass

    def dispatch_round(
        self, seconds: float, *, published: int, republished_lost: int, expired_leases: int
    ) -> None:
        pass

"""What the store records of each task's life: its attempts and the log of its moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.ports.metrics import AttemptResult
from domain.priority import Priority
from domain.task import TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One execution of a task. `number` is the task's attempt count at its claim (a manual
    retry counts from 1 again); `outcome` (success, retried, failed, lost or released),
    `finished_at` and `error` are None while it runs. `scheduled_for` is when the task was due,
    so `lateness` is how late it started. `worker` names who claimed it (None if the claim
    named no worker)."""

    task_id: int
    number: int
    dispatch_no: int
    priority: Priority
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    outcome: AttemptResult | None
    error: str | None
    worker: str | None = None

    @property
    def lateness(self) -> timedelta:
        return self.started_at - self.scheduled_for


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent:
    """A task was created, or its status or priority changed, at `at`. `id` grows with every
    event of the store (the Server-Sent Events id): a reader resumes after the last it saw."""

    id: int
    task_id: int
    tenant: str
    status: TaskStatus
    priority: Priority
    at: datetime


class TaskHistory(Protocol):
    """The store's own record of attempts and events, written in the transaction of each move
    (so it never disagrees with the tasks) and deleted with its task. Reads join the unit of
    work's transaction; every call may raise StoreUnavailable."""

    def attempts(self, task_id: int) -> list[Attempt]:
        """The task's attempts, oldest first; empty for a task never claimed (or unknown)."""

    def recent_attempts(self, started_since: datetime, limit: int) -> list[Attempt]:
        """Attempts started at or after `started_since`, at most `limit` of them, the most
        recent first (the console's throughput and start lateness)."""

    def events(self, after_id: int, limit: int, *, task_id: int | None = None) -> list[TaskEvent]:
        """At most `limit` events whose id is above `after_id`, in id order; only the task's
        with `task_id`. Its cost does not grow with the events before `after_id`."""

    def last_event_id(self) -> int:
        """The highest event id there is; 0 when there is none."""

    def prune_events(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` of the oldest events that happened before `before`; answers
        how many."""

    def not_yet_due(self, now: datetime) -> Mapping[Priority, int]:
        """How many queued tasks of each priority wait for their start time (a priority's delay
        or a retry's backoff) at `now`. Reads only those tasks, never the finished ones."""

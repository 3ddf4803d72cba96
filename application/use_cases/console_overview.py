from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports import AttemptResult, Clock, UnitOfWork
from domain.access import Principal, Scope
from domain.priority import Priority, SchedulePolicy
from domain.task import TaskStatus

WINDOW_MINUTES = 5
# The most recent attempts the window's figures are computed from: at a high rate, the figures
# are those of the last SAMPLE attempts, so one refresh of the console costs the same at any rate.
SAMPLE = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityPanel:
    """One priority at one instant. `not_yet_due` and `due_waiting` split its queued tasks
    (waiting for their start time, or due and waiting for a worker); throughput is the attempts
    that succeeded in each of the last WINDOW_MINUTES minutes, oldest first; start lateness
    (claim time minus the time it was due) in milliseconds over the attempts started in that
    window, None when none started; `delay_ms` is the priority's start delay (the contract the
    lateness is measured against)."""

    priority: Priority
    delay_ms: int
    not_yet_due: int
    due_waiting: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    succeeded_per_minute: list[int]
    lateness_p50_ms: int | None
    lateness_p99_ms: int | None
    attempts_sampled: int


@dataclass(frozen=True, slots=True)
class Overview:
    at: datetime
    panels: list[PriorityPanel]


class ConsoleOverview:
    """The operator console's panels: per priority, the exact counts (never a scan of the
    tasks), the queued tasks not yet due (read from the queued tasks only), and the throughput
    and start lateness of the last minutes from the attempts the store recorded. Needs the admin
    scope (Forbidden): it shows every tenant's tasks."""

    def __init__(self, uow: UnitOfWork, clock: Clock, schedule: SchedulePolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._schedule = schedule

    def execute(self, principal: Principal) -> Overview:
        principal.require(Scope.ADMIN)
        now = self._clock.now()
        since = now - timedelta(minutes=WINDOW_MINUTES)
        with self._uow:
            counts = self._uow.tasks.counts()
            not_yet_due = self._uow.history.not_yet_due(now)
            attempts = self._uow.history.recent_attempts(since, SAMPLE)
        by_status: Counter[tuple[TaskStatus, Priority]] = Counter()
        for (status, priority, _), n in counts.items():
            by_status[status, priority] += n
        panels = []
        for priority in Priority:
            mine = [a for a in attempts if a.priority is priority]
            lateness = sorted(a.lateness for a in mine)
            per_minute = [0] * WINDOW_MINUTES
            for attempt in mine:
                if attempt.outcome is AttemptResult.SUCCESS and attempt.finished_at is not None:
                    age = int((now - attempt.finished_at) / timedelta(minutes=1))
                    if 0 <= age < WINDOW_MINUTES:
                        per_minute[WINDOW_MINUTES - 1 - age] += 1
            queued = by_status[TaskStatus.QUEUED, priority]
            waiting = min(queued, not_yet_due.get(priority, 0))
            panels.append(
                PriorityPanel(
                    priority=priority,
                    delay_ms=round(self._schedule.delay_for(priority).total_seconds() * 1000),
                    not_yet_due=waiting,
                    due_waiting=queued - waiting,
                    running=by_status[TaskStatus.RUNNING, priority],
                    succeeded=by_status[TaskStatus.SUCCESS, priority],
                    failed=by_status[TaskStatus.FAILED, priority],
                    cancelled=by_status[TaskStatus.CANCELLED, priority],
                    succeeded_per_minute=per_minute,
                    lateness_p50_ms=_percentile_ms(lateness, 0.50),
                    lateness_p99_ms=_percentile_ms(lateness, 0.99),
                    attempts_sampled=len(mine),
                )
            )
        return Overview(now, panels)


def _percentile_ms(ordered: list[timedelta], fraction: float) -> int | None:
    """The nearest-rank percentile of sorted durations, in whole milliseconds."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.5) - 1))
    return round(ordered[rank].total_seconds() * 1000)

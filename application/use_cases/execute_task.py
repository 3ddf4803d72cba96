from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from application.ports import Arithmetic, AttemptResult, Clock, Metrics, NullMetrics, UnitOfWork
from domain.errors import TaskFailure
from domain.priority import Priority
from domain.retry import RetryPolicy
from domain.task import Task, TaskStatus

# An attempt counts as a priority inversion if a task of a higher priority had been due and
# unclaimed for longer than this when it started (issue 13): shorter gaps are the normal
# distance between a publication and its claim.
INVERSION_GRACE = timedelta(milliseconds=100)

# A message's task whose turn comes this fraction of the lease after the claims is released, not
# started (see ExecuteTask).
RELEASE_AFTER_LEASE_FRACTION = 3

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExecuteTaskRequest:
    """`queue`: the priority whose queue carried the message, which labels the metric of a
    message dropped before its task was read (None: unknown)."""

    task_id: int
    dispatch_no: int
    queue: Priority | None = None


class AttemptOutcome(StrEnum):
    RECORDED = "recorded"
    """The attempt ran and its outcome (success, retry later, failed) is stored."""
    STALE_MESSAGE = "stale_message"
    """Nothing ran: the message was stale or a duplicate, or named no task."""
    RELEASED = "released"
    """Nothing ran: the task was claimed, but the message's time ran out before its turn, so
    the claim was given back (`Task.release`) and the task is queued again at once."""
    LOST_CLAIM = "lost_claim"
    """The attempt ran, but its lease expired and the task was handed on (or failed) before the
    outcome could be written: the outcome was dropped, the later attempt's stands."""


@dataclass(frozen=True, slots=True)
class ExecuteTaskResult:
    """`task`: as stored after the outcome (RECORDED); the attempt's own copy with the outcome it
    could not write (LOST_CLAIM); None (STALE_MESSAGE). `result`: the attempt's result as the
    metrics count it; `lateness` (claim time minus scheduled_for) and `run` (claim to outcome),
    in seconds, None when nothing ran."""

    outcome: AttemptOutcome
    task: Task | None
    result: AttemptResult = AttemptResult.STALE_DROPPED
    lateness: float | None = None
    run: float | None = None


class ExecuteTask:
    """Run one attempt of each task a message names, on receipt of the message.

    Rules: the attempts first claim their tasks, each claim succeeding only for a queued task
    whose dispatch number is the message's entry's (`Task.claim`'s rule, applied by the
    repository in one conditional write for the whole message, row by row); a stale or
    duplicate entry changes nothing and takes nothing from the others. The claims are committed
    (status running, attempt counted, lease taken) before any work. The entity computes each
    outcome from its claimed copy (`Task.complete`, or `Task.fail_attempt`: retried with backoff
    while the budget lasts), at the time that task's work ended, and the repository writes them
    all in one write, each conditional on its own claim alone: a legal move made meanwhile (a
    new priority) never makes it fail and is kept, and a failing task fails alone. If a lease
    expired and its task was handed to another attempt, that late outcome is dropped; the
    others stand. If the process dies between the claims and the outcomes, every task of the
    message comes back by its lease. A task whose turn comes when a third of the lease has passed
    since the claims is not started but released (queued again at once, the attempt not
    counted), so the message's attempts end well within the leases and before Celery's soft
    time limit (at least half the lease) interrupts one of them.

    The claims name `worker` (this process, as the entry point names it), so each attempt the
    store records says who ran it.

    Each attempt is reported to `metrics`: its start (lateness, wait, and whether a task of a
    higher priority was left waiting, one indexed read per message), then its result and run
    time."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        arithmetic: Arithmetic,
        retry: RetryPolicy,
        lease: timedelta,
        metrics: Metrics | None = None,
        worker: str | None = None,
    ) -> None:
        self._uow = uow
        self._worker = worker
        self._metrics = metrics or NullMetrics()
        self._clock = clock
        self._arithmetic = arithmetic
        self._retry = retry
        self._lease = lease

    def execute(self, request: ExecuteTaskRequest) -> ExecuteTaskResult:
        """What happened to this message (see AttemptOutcome); the store raises if unreachable."""
        return self.execute_all([request])[0]

    def execute_all(self, requests: Sequence[ExecuteTaskRequest]) -> list[ExecuteTaskResult]:
        """What happened to each entry of one message, in the order of `requests` (see
        AttemptOutcome): two store round trips whatever their number, the claims and the
        outcomes. A task id already named earlier in `requests` is a duplicate entry, dropped
        as stale. The store raises if unreachable."""
        claimed_at = self._clock.now()
        claimed = self._claim(requests, claimed_at)
        inversions = self._inversions(claimed.values())
        results: list[ExecuteTaskResult | None] = [None] * len(requests)
        ran: list[tuple[int, Task, int, float | None]] = []
        for index, request in enumerate(requests):
            task = claimed.pop(request.task_id, None)
            if task is None:
                log.debug("dropping entry %s: stale, duplicate or for an unknown task", request)
                self._metrics.attempt_finished(request.queue, AttemptResult.STALE_DROPPED, 0.0)
                results[index] = ExecuteTaskResult(AttemptOutcome.STALE_MESSAGE, None)
                continue
            now = self._clock.now()
            if now - claimed_at >= self._lease / RELEASE_AFTER_LEASE_FRACTION:
                task.release(request.dispatch_no, now)
                ran.append((index, task, request.dispatch_no, None))
                continue
            started = self._report_start(task, inversions.get(task.priority, False))
            self._run(task, request.dispatch_no)
            ran.append((index, task, request.dispatch_no, started))
        recorded = self._record([(task, dispatch_no) for _, task, dispatch_no, _ in ran])
        for index, task, _, lateness in ran:
            results[index] = self._result(task, recorded.get(task.id), lateness)
        return [result for result in results if result is not None]

    def _claim(
        self, requests: Sequence[ExecuteTaskRequest], now: datetime
    ) -> dict[int | None, Task]:
        first: dict[int, int] = {}
        for request in requests:
            first.setdefault(request.task_id, request.dispatch_no)
        with self._uow.one_write():
            claimed = self._uow.tasks.claim_all(
                list(first.items()), now, self._lease, worker=self._worker
            )
            self._uow.commit()
        return {task.id: task for task in claimed}

    def _inversions(self, claimed: Iterable[Task]) -> dict[Priority, bool]:
        """Per priority of the claimed tasks but the highest, whether a task of a higher one was
        left waiting when they started (one read per priority: a message carries one)."""
        if not self._metrics.counts_inversions:
            return {}
        started = {task.priority: task.started_at for task in claimed}
        inversions: dict[Priority, bool] = {}
        for priority, at in started.items():
            if priority is Priority.HIGH or at is None:
                continue
            with self._uow.one_write():
                inversions[priority] = self._uow.tasks.higher_priority_waiting(
                    priority, at - INVERSION_GRACE
                )
                self._uow.commit()
        return inversions

    def _report_start(self, claimed: Task, inversion: bool) -> float:
        started = claimed.started_at
        assert started is not None  # a claimed task has started
        lateness = (started - claimed.scheduled_for).total_seconds()
        self._metrics.attempt_started(
            claimed.priority,
            lateness=lateness,
            wait=(started - claimed.created_at).total_seconds(),
            inversion=inversion,
        )
        return lateness

    def _run(self, claimed: Task, dispatch_no: int) -> None:
        """The work, then the entity's move, at the time the work ended."""
        failure: TaskFailure | None = None
        sums: list[int] = []
        try:
            sums = self._arithmetic.sum_pairs(claimed.operands)
        except TaskFailure as error:
            failure = error
        except Exception as error:  # any bug in the work is one failed attempt, not a lost task
            failure = TaskFailure(f"{type(error).__name__}: {error}")
        now = self._clock.now()
        # The claimed copy still holds the claim, so the entity's move cannot be refused here.
        if failure is None:
            claimed.complete(dispatch_no, sums, now)
        else:
            claimed.fail_attempt(dispatch_no, failure, now, self._retry)

    def _record(self, outcomes: Sequence[tuple[Task, int]]) -> dict[int | None, Task]:
        if not outcomes:
            return {}
        with self._uow.one_write():
            recorded = self._uow.tasks.record_outcomes(outcomes)
            self._uow.commit()
        return {task.id: task for task in recorded}

    def _result(
        self, claimed: Task, recorded: Task | None, lateness: float | None
    ) -> ExecuteTaskResult:
        if lateness is None:  # released: no attempt ran, nor started
            self._metrics.attempt_finished(claimed.priority, AttemptResult.RELEASED, 0.0)
            outcome = AttemptOutcome.RELEASED if recorded is not None else AttemptOutcome.LOST_CLAIM
            return ExecuteTaskResult(outcome, recorded or claimed, AttemptResult.RELEASED)
        assert claimed.started_at is not None  # a claimed task has started
        run = (claimed.updated_at - claimed.started_at).total_seconds()
        if recorded is None:
            self._metrics.attempt_finished(claimed.priority, AttemptResult.LOST, run)
            return ExecuteTaskResult(
                AttemptOutcome.LOST_CLAIM, claimed, AttemptResult.LOST, lateness, run
            )
        result = _RESULTS[recorded.status]
        self._metrics.attempt_finished(claimed.priority, result, run)
        return ExecuteTaskResult(AttemptOutcome.RECORDED, recorded, result, lateness, run)


# What a recorded outcome leaves the task as, read as the attempt's result.
_RESULTS = {
    TaskStatus.SUCCESS: AttemptResult.SUCCESS,
    TaskStatus.QUEUED: AttemptResult.RETRIED,
    TaskStatus.FAILED: AttemptResult.FAILED,
}

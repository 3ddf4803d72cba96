from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
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
    """Run one attempt of a task on receipt of its message.

    Rules: the attempt first claims the task, which succeeds only for a queued task whose
    dispatch number is the message's (`Task.claim`'s rule, applied by the repository in one
    conditional write); a stale or duplicate message changes nothing. The claim is committed
    (status running, attempt counted, lease taken) before any work. The entity computes the
    outcome from the claimed copy (`Task.complete`, or `Task.fail_attempt`: retried with backoff
    while the budget lasts), and the repository writes it conditional on the claim alone: a
    legal move made meanwhile (a new priority) never makes it fail and is kept. If the lease
    expired and the task was handed to another attempt, the late outcome is dropped.

    Each attempt is reported to `metrics`: its start (lateness, wait, and whether a task of a
    higher priority was left waiting, one indexed read), then its result and run time."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        arithmetic: Arithmetic,
        retry: RetryPolicy,
        lease: timedelta,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._metrics = metrics or NullMetrics()
        self._clock = clock
        self._arithmetic = arithmetic
        self._retry = retry
        self._lease = lease

    def execute(self, request: ExecuteTaskRequest) -> ExecuteTaskResult:
        """What happened to this message (see AttemptOutcome); the store raises if unreachable."""
        claimed = self._claim(request)
        if claimed is None:
            self._metrics.attempt_finished(request.queue, AttemptResult.STALE_DROPPED, 0.0)
            return ExecuteTaskResult(AttemptOutcome.STALE_MESSAGE, None)
        lateness = self._report_start(claimed)
        failure: TaskFailure | None = None
        sums: list[int] = []
        try:
            sums = self._arithmetic.sum_pairs(claimed.operands)
        except TaskFailure as error:
            failure = error
        except Exception as error:  # any bug in the work is one failed attempt, not a lost task
            failure = TaskFailure(f"{type(error).__name__}: {error}")
        return self._record(claimed, request.dispatch_no, sums, failure, lateness)

    def _claim(self, request: ExecuteTaskRequest) -> Task | None:
        with self._uow.one_write():
            claimed = self._uow.tasks.claim(
                request.task_id, request.dispatch_no, self._clock.now(), self._lease
            )
            self._uow.commit()
        if claimed is None:
            log.debug("dropping message %s: stale, duplicate or for an unknown task", request)
        return claimed

    def _report_start(self, claimed: Task) -> float:
        started = claimed.started_at
        assert started is not None  # a claimed task has started
        inversion = False
        if self._metrics.counts_inversions and claimed.priority is not Priority.HIGH:
            with self._uow.one_write():
                inversion = self._uow.tasks.higher_priority_waiting(
                    claimed.priority, started - INVERSION_GRACE
                )
                self._uow.commit()
        lateness = (started - claimed.scheduled_for).total_seconds()
        self._metrics.attempt_started(
            claimed.priority,
            lateness=lateness,
            wait=(started - claimed.created_at).total_seconds(),
            inversion=inversion,
        )
        return lateness

    def _record(
        self,
        claimed: Task,
        dispatch_no: int,
        sums: list[int],
        failure: TaskFailure | None,
        lateness: float,
    ) -> ExecuteTaskResult:
        now = self._clock.now()
        # The claimed copy still holds the claim, so the entity's move cannot be refused here.
        if failure is None:
            claimed.complete(dispatch_no, sums, now)
        else:
            claimed.fail_attempt(dispatch_no, failure, now, self._retry)
        with self._uow.one_write():
            recorded = self._uow.tasks.record_outcome(claimed, dispatch_no)
            self._uow.commit()
        assert claimed.started_at is not None  # a claimed task has started
        run = (now - claimed.started_at).total_seconds()
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

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from application.ports import Arithmetic, Clock, UnitOfWork
from application.use_cases._moves import apply_move
from domain.errors import ConcurrentModification, IllegalTransition, TaskFailure
from domain.retry import RetryPolicy
from domain.task import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExecuteTaskRequest:
    task_id: int
    dispatch_no: int


class ExecuteTask:
    """Run one attempt of a task on receipt of its message.

    Rules: the attempt first claims the task, which succeeds only for a queued task whose
    dispatch number is the message's (`Task.claim`'s rule, applied by the repository in one
    conditional write); a stale or duplicate message changes nothing. The claim is committed
    (status running, attempt counted, lease taken) before any work. The outcome is written only
    while this attempt still holds the claim: if its lease expired and the task was handed to
    another attempt, the late result is dropped. If the outcome cannot be written because the
    task keeps changing under it, it is dropped too and the lease brings the task back. A failed
    attempt is retried with backoff while the budget lasts (the entity decides)."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        arithmetic: Arithmetic,
        retry: RetryPolicy,
        lease: timedelta,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._arithmetic = arithmetic
        self._retry = retry
        self._lease = lease

    def execute(self, request: ExecuteTaskRequest) -> Task | None:
        """The task as this attempt left it, or None if the message was stale."""
        claimed = self._claim(request)
        if claimed is None:
            return None
        failure: TaskFailure | None = None
        sums: list[int] = []
        try:
            sums = self._arithmetic.sum_pairs(claimed.operands)
        except TaskFailure as error:
            failure = error
        except Exception as error:  # any bug in the work is one failed attempt, not a lost task
            failure = TaskFailure(f"{type(error).__name__}: {error}")
        return self._record(claimed, request.dispatch_no, sums, failure)

    def _claim(self, request: ExecuteTaskRequest) -> Task | None:
        with self._uow.one_write():
            claimed = self._uow.tasks.claim(
                request.task_id, request.dispatch_no, self._clock.now(), self._lease
            )
            self._uow.commit()
        if claimed is None:
            log.debug("dropping message %s: stale, duplicate or for an unknown task", request)
        return claimed

    def _record(
        self, claimed: Task, dispatch_no: int, sums: list[int], failure: TaskFailure | None
    ) -> Task | None:
        now = self._clock.now()

        def outcome(task: Task) -> None:
            if failure is None:
                task.complete(dispatch_no, sums, now)
            else:
                task.fail_attempt(dispatch_no, failure, now, self._retry)

        assert claimed.id is not None
        try:
            return apply_move(self._uow, claimed.id, outcome, known=claimed)
        except IllegalTransition:
            log.warning(
                "task %s: attempt %s lost its claim; its outcome is dropped",
                claimed.id,
                dispatch_no,
            )
            return None
        except ConcurrentModification:
            # Still running under this attempt's lease: when it expires the dispatcher hands the
            # task to another attempt (or fails it if that was the last).
            log.error(
                "task %s: attempt %s could not record its outcome, the task kept changing; "
                "dropped, the lease will bring the task back",
                claimed.id,
                dispatch_no,
            )
            return None

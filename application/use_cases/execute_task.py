from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from application.ports import Arithmetic, Clock, UnitOfWork
from application.use_cases._moves import apply_move
from domain.errors import IllegalTransition, TaskFailure, TaskNotFound
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
    dispatch number is the message's; a stale or duplicate message changes nothing. The claim is
    committed (status running, attempt counted, lease taken) before any work. The outcome is
    written only while this attempt still holds the claim: if its lease expired and the task was
    handed to another attempt, the late result is dropped. A failed attempt is retried with
    backoff while the budget lasts (the entity decides)."""

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
        now = self._clock.now()

        def claim(task: Task) -> None:
            task.claim(request.dispatch_no, now, self._lease)

        try:
            return apply_move(self._uow, request.task_id, claim)
        except (IllegalTransition, TaskNotFound) as stale:
            log.debug("dropping message %s: %s", request, stale)
            return None

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

from __future__ import annotations

from application.ports import Clock, TaskQueue, UnitOfWork
from application.publication import publish_committed
from application.use_cases._moves import apply_move
from domain.access import BUILT_IN, Principal
from domain.priority import SchedulePolicy
from domain.task import Task


class RetryTask:
    """Manual retry. Rules: only a failed task (IllegalTransition otherwise); its attempt budget
    is reset and its error cleared; it starts after its priority's delay, counted from now, and
    is published at once if that delay is none (Task.should_publish)."""

    def __init__(
        self, uow: UnitOfWork, queue: TaskQueue, clock: Clock, schedule: SchedulePolicy
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._schedule = schedule

    def execute(self, task_id: int, principal: Principal = BUILT_IN) -> Task:
        now = self._clock.now()

        task = apply_move(
            self._uow, task_id, lambda task: task.retry(now, self._schedule), principal
        )
        publish_committed(self._uow, self._queue, self._clock, [task])
        return task

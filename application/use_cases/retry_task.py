from __future__ import annotations

from application.ports import Clock, TaskQueue, UnitOfWork
from application.use_cases._moves import apply_move, publish_committed
from domain.access import BUILT_IN, Principal
from domain.priority import SchedulePolicy
from domain.task import Task


class RetryTask:
    """Manual retry. Rules: only a failed task (IllegalTransition otherwise); its attempt budget
    is reset and its error cleared; it starts after its priority's delay, counted from now."""

    def __init__(
        self, uow: UnitOfWork, queue: TaskQueue, clock: Clock, schedule: SchedulePolicy
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._schedule = schedule

    def execute(self, task_id: int, principal: Principal = BUILT_IN) -> Task:
        now = self._clock.now()

        def move(task: Task) -> None:
            task.retry(now, self._schedule)
            if task.is_due(now):
                task.mark_published(now)

        task = apply_move(self._uow, task_id, move, principal)
        if task.published_at == now:
            publish_committed(self._uow, self._queue, [task])
        return task

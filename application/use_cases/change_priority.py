from __future__ import annotations

from dataclasses import dataclass

from application.ports import Clock, TaskQueue, UnitOfWork
from application.publication import publish_committed
from application.use_cases._moves import apply_move
from domain.access import BUILT_IN, Principal
from domain.priority import Priority, SchedulePolicy
from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePriorityRequest:
    task_id: int
    priority: Priority
    principal: Principal = BUILT_IN


class ChangePriority:
    """Move a task to another priority.

    Rules (the entity's): a queued task is re-scheduled from now with the new priority's delay
    and gets a new dispatch number, so a message already on the old queue is dropped as stale;
    if the new priority has no delay it is published on its queue at once. A running or failed
    task only records the priority, for a later retry. Success or cancelled: IllegalTransition."""

    def __init__(
        self, uow: UnitOfWork, queue: TaskQueue, clock: Clock, schedule: SchedulePolicy
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._schedule = schedule

    def execute(self, request: ChangePriorityRequest) -> Task:
        now = self._clock.now()

        task = apply_move(
            self._uow,
            request.task_id,
            lambda task: task.change_priority(request.priority, now, self._schedule),
            request.principal,
        )
        publish_committed(self._uow, self._queue, self._clock, [task])
        return task

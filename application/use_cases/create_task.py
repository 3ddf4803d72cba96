from __future__ import annotations

from dataclasses import dataclass

from application.ports import Clock, TaskQueue, UnitOfWork
from application.use_cases._moves import publish_committed
from domain.priority import Priority, SchedulePolicy
from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTaskRequest:
    a: object
    b: object
    priority: Priority = Priority.MEDIUM


def accept(task: Task, uow: UnitOfWork, queue: TaskQueue, publish_now: bool) -> Task:
    """Commit a new task, then publish it at once if it is already due.

    The publication is recorded in the same commit as the task, so the acceptance costs one
    transaction; if the broker then turns out to be down the record is undone (see
    publish_committed) and the task still counts as accepted."""
    if publish_now:
        task.mark_published(task.created_at)
    with uow:
        uow.tasks.add(task)
        uow.commit()
    if publish_now:
        publish_committed(uow, queue, [task])
    return task


class CreateTask:
    """Accept one addition `a + b`.

    Rules: both operands are integers in the signed 64-bit range; the task starts after its
    priority's delay; a task with no delay is published to its queue at once."""

    def __init__(
        self,
        uow: UnitOfWork,
        queue: TaskQueue,
        clock: Clock,
        schedule: SchedulePolicy,
        max_attempts: int,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._schedule = schedule
        self._max_attempts = max_attempts

    def execute(self, request: CreateTaskRequest) -> Task:
        now = self._clock.now()
        task = Task.single(
            request.a,
            request.b,
            priority=request.priority,
            now=now,
            schedule=self._schedule,
            max_attempts=self._max_attempts,
        )
        return accept(task, self._uow, self._queue, task.is_due(now))

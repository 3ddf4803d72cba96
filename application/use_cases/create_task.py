from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from application.ports import Clock, Metrics, NullMetrics, TaskQueue, UnitOfWork
from application.use_cases._moves import publish_committed
from domain.errors import DomainError
from domain.priority import Priority, SchedulePolicy
from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTaskRequest:
    a: object
    b: object
    priority: Priority = Priority.MEDIUM


def accept(
    tasks: Sequence[Task],
    uow: UnitOfWork,
    queue: TaskQueue,
    now: datetime,
    metrics: Metrics,
) -> None:
    """Commit new tasks in one transaction, then publish at once those already due.

    The publication is recorded in the same commit as the tasks, so the acceptance costs one
    transaction; if the broker then turns out to be down the record is undone (see
    publish_committed) and the tasks still count as accepted."""
    if not tasks:
        return
    due = [task for task in tasks if task.is_due(now)]
    for task in due:
        task.mark_published(task.created_at)
    with uow:
        uow.tasks.add_all(tasks)
        uow.commit()
    metrics.tasks_created(tasks)
    publish_committed(uow, queue, due)


class CreateTask:
    """Accept one addition `a + b`, or many at once.

    Rules: both operands are integers in the signed 64-bit range; the task starts after its
    priority's delay; a task with no delay is published to its queue at once. Many requests
    accepted together share one transaction and one publish: each is accepted exactly as it
    would be alone, and a request the rules refuse does not hold back the others."""

    def __init__(
        self,
        uow: UnitOfWork,
        queue: TaskQueue,
        clock: Clock,
        schedule: SchedulePolicy,
        max_attempts: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._metrics = metrics or NullMetrics()
        self._queue = queue
        self._clock = clock
        self._schedule = schedule
        self._max_attempts = max_attempts

    def execute(self, request: CreateTaskRequest) -> Task:
        (outcome,) = self.execute_all([request])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def execute_all(self, requests: Sequence[CreateTaskRequest]) -> list[Task | DomainError]:
        """One outcome per request, in order: its accepted task, or the rule it broke. A
        failure of the store or the broker is every request's, and raises."""
        now = self._clock.now()
        outcomes: list[Task | DomainError] = []
        for request in requests:
            try:
                outcomes.append(self._task(request, now))
            except DomainError as refused:
                outcomes.append(refused)
        accept(
            [o for o in outcomes if isinstance(o, Task)], self._uow, self._queue, now, self._metrics
        )
        return outcomes

    def _task(self, request: CreateTaskRequest, now: datetime) -> Task:
        return Task.single(
            request.a,
            request.b,
            priority=request.priority,
            now=now,
            schedule=self._schedule,
            max_attempts=self._max_attempts,
        )

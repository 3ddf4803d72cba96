from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from application.ports import Clock, Metrics, NullMetrics, TaskQueue, UnitOfWork
from application.use_cases.create_task import accept
from domain.errors import BatchTooLarge
from domain.priority import Priority, SchedulePolicy
from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateBatchRequest:
    pairs: Sequence[tuple[object, object]]
    priority: Priority = Priority.MEDIUM


class CreateBatch:
    """Accept a batch of additions run as one task.

    Rules: 1..max_pairs pairs (more is BatchTooLarge), each operand an int64; the sums come back
    in the order of the pairs; scheduling and publication as for a single task."""

    def __init__(
        self,
        uow: UnitOfWork,
        queue: TaskQueue,
        clock: Clock,
        schedule: SchedulePolicy,
        max_attempts: int,
        max_pairs: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._metrics = metrics or NullMetrics()
        self._queue = queue
        self._clock = clock
        self._schedule = schedule
        self._max_attempts = max_attempts
        self._max_pairs = max_pairs

    def execute(self, request: CreateBatchRequest) -> Task:
        if len(request.pairs) > self._max_pairs:
            raise BatchTooLarge(len(request.pairs), self._max_pairs)
        now = self._clock.now()
        task = Task.batch(
            request.pairs,
            priority=request.priority,
            now=now,
            schedule=self._schedule,
            max_attempts=self._max_attempts,
        )
        accept([task], self._uow, self._queue, now, self._metrics)
        return task

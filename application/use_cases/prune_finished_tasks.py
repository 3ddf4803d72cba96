from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from application.ports import Clock, UnitOfWork
from domain.task import TaskStatus

EVENT_BATCHES_PER_CALL = 20


class PruneFinishedTasks:
    """Retention: delete tasks that finished longer ago than their status's age, at most
    `batch_size` per status per call, each status in its own short transaction (row locks held
    for one batch only, the counts kept exact in it). `retention` maps a finished status to its
    age; a status missing from it (or with a zero age) is kept forever. Also folds the counts'
    storage, which retention and every other write keep growing. A task's attempts and events
    go with it (the store deletes them); events older than `events_retention` go too, at most
    `batch_size` per batch and at most EVENT_BATCHES_PER_CALL batches per call (None keeps them
    as long as their task). Answers how many tasks were
    deleted per status: as many as `batch_size` means more are waiting."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        retention: Mapping[TaskStatus, timedelta],
        batch_size: int,
        events_retention: timedelta | None = None,
    ) -> None:
        for status in retention:
            if status not in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED):
                raise ValueError(f"only finished tasks are pruned, not {status.value} ones")
        self._uow = uow
        self._clock = clock
        self._retention = {status: age for status, age in retention.items() if age > timedelta(0)}
        self._batch_size = batch_size
        self._events_retention = events_retention

    def execute(self) -> dict[TaskStatus, int]:
        pruned: dict[TaskStatus, int] = {}
        for status, age in self._retention.items():
            with self._uow:
                cutoff = self._clock.now() - age
                pruned[status] = self._uow.tasks.prune_finished(status, cutoff, self._batch_size)
                self._uow.commit()
        with self._uow:
            self._uow.tasks.fold_counts()
            self._uow.commit()
        if self._events_retention:
            cutoff = self._clock.now() - self._events_retention
            # Every task writes about three events, so one batch a pass would fall behind a busy
            # system: batches (each its own short transaction) until the old ones are gone.
            for _ in range(EVENT_BATCHES_PER_CALL):
                with self._uow:
                    events = self._uow.history.prune_events(cutoff, self._batch_size)
                    self._uow.commit()
                if events < self._batch_size:
                    break
        return pruned

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from application.ports import Clock, QueueUnavailable, TaskQueue, UnitOfWork
from application.use_cases._moves import publish_committed
from domain.priority import Priority


@dataclass(frozen=True, slots=True)
class DispatchReport:
    published: int = 0
    republished_lost: int = 0
    expired_leases: int = 0
    broker_available: bool = True


class DispatchDue:
    """One round of the dispatcher, the only mover of time-driven transitions.

    1. Running tasks whose lease expired go back to queued (or fail if that was their last
       attempt): their worker is gone.
    2. Queued tasks published more than `lost_after` ago while their priority's queue is empty
       lost their message (broker restarted or wiped): they get a new dispatch number.
    3. Queued, unpublished tasks whose start time has come are published, at most `batch_size`.

    Several dispatchers may run at once: every selection skips rows another one holds."""

    def __init__(
        self,
        uow: UnitOfWork,
        queue: TaskQueue,
        clock: Clock,
        batch_size: int,
        lost_after: timedelta,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._batch_size = batch_size
        self._lost_after = lost_after

    def execute(self) -> DispatchReport:
        expired = self._expire_leases()
        try:
            lost = self._requeue_lost_messages()
        except QueueUnavailable:
            return DispatchReport(expired_leases=expired, broker_available=False)
        published = self._publish_due()
        return DispatchReport(published, lost, expired)

    def _expire_leases(self) -> int:
        now = self._clock.now()
        with self._uow:
            tasks = self._uow.tasks.expired_leases(now, self._batch_size)
            for task in tasks:
                task.expire_lease(now)
                self._uow.tasks.save(task)
            self._uow.commit()
        return len(tasks)

    def _requeue_lost_messages(self) -> int:
        now = self._clock.now()
        requeued = 0
        for priority in Priority:
            # A message still waiting on the queue cannot be told apart from a lost one, so only
            # an empty queue proves that an overdue task's message is gone.
            if self._queue.pending(priority) > 0:
                continue
            with self._uow:
                tasks = self._uow.tasks.published_before(
                    priority, now - self._lost_after, self._batch_size
                )
                for task in tasks:
                    task.republish_lost(now)
                    self._uow.tasks.save(task)
                self._uow.commit()
            requeued += len(tasks)
        return requeued

    def _publish_due(self) -> int:
        now = self._clock.now()
        with self._uow:
            tasks = self._uow.tasks.due_for_dispatch(now, self._batch_size)
            for task in tasks:
                task.mark_published(now)
                self._uow.tasks.save(task)
            self._uow.commit()
        publish_committed(self._uow, self._queue, tasks)
        return len(tasks)

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports import Clock, QueueUnavailable, TaskQueue, UnitOfWork
from application.publication import publish_selected
from domain.priority import Priority


@dataclass(frozen=True, slots=True)
class DispatchReport:
    published: int = 0
    republished_lost: int = 0
    expired_leases: int = 0
    broker_available: bool = True
    # Seconds from the round's end until the next unpublished task's start time comes (a
    # priority's delay or a retry's backoff running out); None when no such task waits. The
    # dispatcher sleeps no longer than this, so a delayed task is published when it is due,
    # not up to a poll interval later.
    next_due_in_seconds: float | None = None


class DispatchDue:
    """One round of the dispatcher, the only mover of time-driven transitions.

    1. Running tasks whose lease expired go back to queued (or fail if that was their last
       attempt): their worker is gone.
    2. Queued tasks whose message is gone (broker restarted or wiped, or a worker took it and
       could not reach the store) get a new dispatch number. Queues are FIFO, and a message's
       dispatches are published and taken together, so the Q dispatches the messages waiting on
       a priority's queue carry belong to its Q most recently published tasks; a queued task of
       that priority published before them, and more than `lost_after` ago, lost its message.
       Q is counted in dispatches, not messages (a message may carry several), exactly while
       few messages wait and as an upper bound beyond; extra dispatches (duplicates, stale or
       cancelled tasks', the bound's slack) only make the count more conservative, so a long
       backlog of live messages is never republished.
    3. Queued, unpublished tasks whose start time has come (`Task.should_publish`) are
       published, at most `batch_size`, highest priority first, their publication recorded in
       the transaction that selected them and committed once the broker took the messages.

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
        lost = 0
        try:
            lost = self._requeue_lost_messages()
            published, next_due = self._publish_due()
        except QueueUnavailable:
            return DispatchReport(
                republished_lost=lost, expired_leases=expired, broker_available=False
            )
        next_due_in = None
        if next_due is not None:
            next_due_in = max((next_due - self._clock.now()).total_seconds(), 0.0)
        return DispatchReport(published, lost, expired, next_due_in_seconds=next_due_in)

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
        requeued = 0
        for priority in Priority:
            # The time is read before the count: a task published after the count is not ranked
            # among those whose messages were counted. (A publication recorded before the count
            # but pushed just after it is a window of a round trip: at worst as many of the
            # oldest waiting messages are taken for lost and republished once, which runs
            # nothing twice.)
            counted_at = self._clock.now()
            waiting = self._queue.waiting_dispatches(priority)
            with self._uow:
                tasks = self._uow.tasks.lost_messages(
                    priority,
                    waiting=waiting,
                    counted_at=counted_at,
                    published_before=counted_at - self._lost_after,
                    limit=self._batch_size,
                )
                for task in tasks:
                    task.republish_lost(counted_at)
                    self._uow.tasks.save(task)
                self._uow.commit()
            requeued += len(tasks)
        return requeued

    def _publish_due(self) -> tuple[int, datetime | None]:
        """How many due tasks were published, and when the next unpublished one comes due
        (read at the same `now` as the selection, so none falls between the two)."""
        now = self._clock.now()
        with self._uow:
            tasks = self._uow.tasks.due_for_dispatch(now, self._batch_size)
            next_due = self._uow.tasks.next_due_after(now)
            published = publish_selected(self._uow, self._queue, self._clock, tasks)
            self._uow.commit()
        return published, next_due

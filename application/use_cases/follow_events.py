from __future__ import annotations

import time
from dataclasses import dataclass, field

from application.errors import TaskNotFound
from application.ports import TaskEvent, UnitOfWork
from domain.access import BUILT_IN, Principal, Scope
from domain.priority import Priority
from domain.task import TaskStatus

EVENTS_PER_READ = 500
FINISHED = (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclass(kw_only=True)
class EventCursor:
    """Where a reader is in the event log, and which events it wants: one task's (`task_id`),
    or every task's it may see, optionally of one status and one priority. `after_id` is the id
    of the last event read past (the SSE `Last-Event-ID`)."""

    principal: Principal = BUILT_IN
    after_id: int = 0
    task_id: int | None = None
    status: TaskStatus | None = None
    priority: Priority | None = None
    # Since when (time.monotonic) the next id has been missing; None: no gap seen.
    gap_since: float | None = field(default=None, repr=False)
    # One task's stream only: the task finished (its last event was read) or is gone.
    ended: bool = False
    # The last read was a full one (EVENTS_PER_READ events): more may wait, read again at once.
    more: bool = False

    def wants(self, event: TaskEvent) -> bool:
        """The reader may see the event (its tenant's, or any for an admin) and it matches the
        filters."""
        return (
            self.principal.sees(event.tenant)
            and (self.task_id is None or event.task_id == self.task_id)
            and (self.status is None or event.status is self.status)
            and (self.priority is None or event.priority is self.priority)
        )


class FollowEvents:
    """Reads the event log as a stream, for Server-Sent Events. `open` checks the reader and
    places its cursor; each `next` answers the events after it that it may see (its tenant's,
    or every tenant's for an admin) and that match its filters, in id order, and moves it on.

    A reader that resumes (`after_id` given) misses nothing still in the log. On PostgreSQL an
    event id is taken when its transaction writes it, so a transaction that began earlier may
    commit a lower id after a higher one was read: reading every task's events, `next` stops at
    a missing id and waits for it up to `gap_wait` seconds (a rolled-back transaction leaves a
    hole that never fills). One task's events need no wait: its writers take its row lock in
    turn, so they commit in id order.

    A reader with an admin's cursor and no filter reads every event: one such reader can serve
    many streams, each keeping what its own cursor `wants`."""

    def __init__(self, uow: UnitOfWork, gap_wait: float) -> None:
        self._uow = uow
        self._gap_wait = gap_wait

    def open(self, cursor: EventCursor, *, resume: bool) -> EventCursor:
        """Checks the principal (tasks:read; Forbidden) and the task (TaskNotFound if it may not
        see it). Not resuming, a task's stream starts at its first event, and every task's at
        the next event to come."""
        cursor.principal.require(Scope.READ)
        with self._uow:
            if cursor.task_id is not None:
                task = self._uow.tasks.get(cursor.task_id)
                if task is None or not cursor.principal.sees(task.tenant):
                    raise TaskNotFound(cursor.task_id)
            elif not resume:
                cursor.after_id = self._uow.history.last_event_id()
            else:
                # An id past the newest (a client of a restored database, or any made-up id)
                # reads on from the newest: the events to come are all after it.
                cursor.after_id = min(cursor.after_id, self._uow.history.last_event_id())
        return cursor

    def next(self, cursor: EventCursor) -> list[TaskEvent]:
        """The next events. On one task's stream, `cursor.ended` is set once its latest event
        finished it, or it is gone, or it finished and its events were pruned."""
        with self._uow:
            # One task's stream reads the task before its events: a move's event commits with the
            # move, so a task seen finished here has its last event in the read that follows.
            # (Read after the events, a task that finished in between would end the stream
            # without its last event.)
            task = None if cursor.task_id is None else self._uow.tasks.get(cursor.task_id)
            read = self._uow.history.events(
                cursor.after_id, EVENTS_PER_READ, task_id=cursor.task_id
            )
            if cursor.task_id is not None and not read:
                cursor.ended = task is None or task.is_finished
        if cursor.task_id is None:
            read = self._without_gaps(cursor, read)
        elif read and read[-1].status in FINISHED and len(read) < EVENTS_PER_READ:
            # Its latest event finished it (a failure retried since is not the end).
            cursor.ended = True
        # Not after a read cut short by a missing id: that one is waited for, not read at once.
        cursor.more = len(read) == EVENTS_PER_READ
        if read:
            cursor.after_id = read[-1].id
        return [event for event in read if cursor.wants(event)]

    def _without_gaps(self, cursor: EventCursor, read: list[TaskEvent]) -> list[TaskEvent]:
        expected = cursor.after_id + 1
        for index, event in enumerate(read):
            if event.id != expected:
                now = time.monotonic()
                if cursor.gap_since is None:
                    cursor.gap_since = now
                if now - cursor.gap_since < self._gap_wait:
                    return read[:index]
            cursor.gap_since = None
            expected = event.id + 1
        return read

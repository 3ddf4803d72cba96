"""Publication (docs/glossary.md#publication): the wake-up message of a committed task that is
due, then the record that it was sent.

The order is one rule: the task's row is committed before its message is published, so a worker
never receives a message for a row it cannot see yet; and its publication is recorded only
after the broker took the message, so a task is never marked published by a write that another
must undo when the broker turns out to be down. A task left unpublished is the dispatcher's:
it publishes every task `Task.should_publish` names, at most one round later."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from application.ports import Dispatch, QueueUnavailable, StoreUnavailable, TaskQueue, UnitOfWork
from domain.task import Task

log = logging.getLogger(__name__)


def publish_committed(
    uow: UnitOfWork, queue: TaskQueue, tasks: Sequence[Task], now: datetime
) -> int:
    """Publish those of `tasks`, just committed, that `Task.should_publish` at `now`, then record
    their publication in one write of its own (`TaskRepository.save_published`). Answers how
    many were published.

    Never raises for the broker or the store, since the tasks are committed either way: if the
    broker is down nothing is recorded and 0 is answered (the dispatcher publishes them when it
    is back); if the store fails after the broker took the messages the tasks stay unpublished,
    and the dispatcher publishes them again (a duplicate message runs nothing twice). A task
    moved, claimed or published by someone else in between is left as that writer left it."""
    due = [task for task in tasks if task.should_publish(now)]
    if not due:
        return 0
    try:
        _publish(queue, due)
    except QueueUnavailable as error:
        log.warning("broker unavailable (%s): %d task(s) left for the dispatcher", error, len(due))
        return 0
    try:
        with uow.one_write():
            uow.tasks.save_published(due, now)
            uow.commit()
    except StoreUnavailable as error:
        log.warning("published %d task(s) but could not record it (%s)", len(due), error)
    return len(due)


def publish_selected(
    uow: UnitOfWork, queue: TaskQueue, tasks: Sequence[Task], now: datetime
) -> int:
    """Inside the unit of work that selected `tasks` with their rows locked
    (`TaskRepository.due_for_dispatch`): publish those that `Task.should_publish` at `now`, then
    record their publication in the same transaction, which the caller commits. Answers how
    many were published.

    The rows were committed before this transaction read them, so a worker sees them; its claim
    waits for the commit behind the row lock (a publish round trip). Raises QueueUnavailable if
    the broker is down: nothing is recorded, and the caller's rollback frees the rows."""
    due = [task for task in tasks if task.should_publish(now)]
    if not due:
        return 0
    _publish(queue, due)
    uow.tasks.save_published(due, now)
    return len(due)


def _publish(queue: TaskQueue, tasks: Sequence[Task]) -> None:
    queue.publish([Dispatch(t.id, t.dispatch_no, t.priority) for t in tasks if t.id is not None])

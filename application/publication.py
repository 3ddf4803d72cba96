"""Publication (docs/glossary.md#publication): the wake-up message of a committed task that is
due, and the record that it was sent, in that transaction only if the broker took it.

One order for every publisher (a create, a move, the dispatcher): the task's row is committed
first, so a worker never receives a message for a row it cannot see yet; then one transaction
records the publication (one conditional UPDATE, which also locks the rows), publishes, and
commits only if the broker took the messages: no write ever marks a task published that
another must undo. While the rows are locked, a dispatcher's selection skips them and a task
published meanwhile by someone else is not recorded, hence not published, twice; a worker's
claim waits for the commit, one publish round trip. A task left unpublished is the
dispatcher's: it publishes every task `Task.should_publish` names, at most one round later."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from application.ports import (
    Clock,
    Dispatch,
    QueueUnavailable,
    StoreUnavailable,
    TaskQueue,
    UnitOfWork,
)
from domain.task import Task

log = logging.getLogger(__name__)


def publish_committed(
    uow: UnitOfWork, queue: TaskQueue, clock: Clock, tasks: Sequence[Task]
) -> int:
    """Publish those of `tasks`, committed already, that `Task.should_publish` now, in a unit of
    work of its own (see the module's order). Answers how many were published.

    The time recorded is read here, just before the record and the push: the lost-message
    sweep ranks publications by it against the messages it counts at a given time, and a time
    read earlier (before the INSERT, say) would widen the window in which a message pushed just
    after a count belongs to a publication recorded as before it.

    Never raises for the broker or the store, since the tasks are committed either way: if
    either is down nothing is recorded (the dispatcher publishes them later; if the store failed
    after the broker took the messages, that is a duplicate, which the claim drops)."""
    try:
        with uow:
            published = publish_selected(uow, queue, tasks, clock.now())
            uow.commit()
    except QueueUnavailable as error:
        log.warning("broker unavailable (%s): task(s) left for the dispatcher", error)
        return 0
    except StoreUnavailable as error:
        log.warning("could not publish or record the publication of task(s): %s", error)
        return 0
    return published


def publish_selected(
    uow: UnitOfWork, queue: TaskQueue, tasks: Sequence[Task], now: datetime
) -> int:
    """Inside an open unit of work, which the caller commits: record the publication of those
    of `tasks` (committed already) that `Task.should_publish` at `now` and are still as read
    (`TaskRepository.save_published`), then publish them. Answers how many.

    Raises QueueUnavailable if the broker is down: the caller's unit of work must then not be
    committed (leaving it rolls the record back), and the copies in hand are as they were."""
    due = [task for task in tasks if task.should_publish(now)]
    if not due:
        return 0
    before = [(task.published_at, task.version) for task in due]
    recorded = uow.tasks.save_published(due, now)
    try:
        queue.publish([Dispatch(t.id, t.dispatch_no, t.priority) for t in recorded if t.id])
    except QueueUnavailable:
        for task, (published_at, version) in zip(due, before, strict=True):
            task.published_at, task.version = published_at, version
        raise
    return len(recorded)

"""Publication (docs/glossary.md#publication): the wake-up message of a committed task that is
due, and the record that it was sent, in that transaction only if the broker took it.

One order for every publisher (a create, a move, the dispatcher): the task's row is committed
first, so a worker never receives a message for a row it cannot see yet; then one transaction
locks the rows still awaiting publication, publishes, records the publication and commits,
only if the broker took the messages: no write ever marks a task published that another must
undo. While the rows are locked, a dispatcher's selection skips them and a task published
meanwhile by someone else is not locked, hence not published, twice; a worker's claim waits
for the commit, one publish round trip. A task left unpublished is the
dispatcher's: it publishes every task `Task.should_publish` names, at most one round later."""

from __future__ import annotations

import logging
from collections.abc import Sequence

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
    work of its own (see the module's order): their rows locked
    (`TaskRepository.lock_awaiting_publication`), then `publish_selected`, then the commit.
    Answers how many were published.

    Never raises for the broker or the store, since the tasks are committed either way: if
    either is down nothing is recorded (the dispatcher publishes them later; if the store failed
    after the broker took the messages, that is a duplicate, which the claim drops)."""
    now = clock.now()
    due = [task for task in tasks if task.should_publish(now)]
    if not due:
        return 0
    try:
        with uow:
            locked = uow.tasks.lock_awaiting_publication(due)
            published = publish_selected(uow, queue, clock, locked)
            uow.commit()
    except QueueUnavailable as error:
        log.warning("broker unavailable (%s): task(s) left for the dispatcher", error)
        return 0
    except StoreUnavailable as error:
        log.warning("could not publish or record the publication of task(s): %s", error)
        return 0
    return published


def publish_selected(uow: UnitOfWork, queue: TaskQueue, clock: Clock, tasks: Sequence[Task]) -> int:
    """Inside an open unit of work that holds the rows of `tasks` locked, which the caller
    commits: publish those that `Task.should_publish`, then record their publication
    (`TaskRepository.save_published`). Answers how many were published.

    The time recorded is read once the broker took the messages: the lost-message sweep ranks
    publications by it against the messages it counted at a given time, so a message pushed
    after a count must not be recorded as published before it. Raises QueueUnavailable if the
    broker is down: nothing is recorded, and the caller's unit of work must not be committed."""
    due = [task for task in tasks if task.should_publish(clock.now())]
    if not due:
        return 0
    queue.publish([Dispatch(t.id, t.dispatch_no, t.priority) for t in due if t.id is not None])
    uow.tasks.save_published(due, clock.now())
    return len(due)

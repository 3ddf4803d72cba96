"""What several use cases share: applying a move to a stored task under its row lock, and
publishing tasks that are due right after they were committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from application.errors import TaskNotFound
from application.ports import Dispatch, QueueUnavailable, TaskQueue, UnitOfWork
from domain.task import Task

log = logging.getLogger(__name__)


def apply_move(uow: UnitOfWork, task_id: int, move: Callable[[Task], None]) -> Task:
    """Read the task with its row locked, apply `move` (which raises if the state machine forbids
    it), write it back, commit.

    Concurrent writers of one task queue on its row lock instead of failing on each other's
    versions, so under a storm of moves each one is applied in turn to the task as the one
    before left it, and none is refused for the others' sake. Raises TaskNotFound, or what
    `move` raises; ConcurrentModification only if a writer bypassed the lock (a bug).
    """
    with uow:
        task = uow.tasks.get_for_update(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        move(task)
        uow.tasks.save(task)
        uow.commit()
    return task


def publish_committed(uow: UnitOfWork, queue: TaskQueue, tasks: Sequence[Task]) -> None:
    """Publish tasks whose publication is already recorded and committed.

    Recording first means a worker can never receive a message for a row it cannot see yet. If the
    broker is unreachable the record is undone, so the dispatcher publishes them when it is back;
    if even that fails, the dispatcher's lost-message sweep still finds them."""
    if not tasks:
        return
    try:
        queue.publish([Dispatch(t.id, t.dispatch_no, t.priority) for t in tasks if t.id])
    except QueueUnavailable:
        log.warning("broker unavailable: %d task(s) left for the dispatcher", len(tasks))
        for task in tasks:
            _forget_publication(uow, task)


def _forget_publication(uow: UnitOfWork, published: Task) -> None:
    assert published.id is not None

    def unpublish(task: Task) -> None:
        if task.dispatch_no == published.dispatch_no and task.published_at is not None:
            task.mark_unpublished()

    try:
        apply_move(uow, published.id, unpublish)
    except Exception:  # the store is down too: the lost-message sweep will republish it
        log.exception("could not mark task %s unpublished", published.id)

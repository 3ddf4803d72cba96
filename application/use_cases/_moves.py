"""What several use cases share: applying a move to a stored task under optimistic
concurrency, and publishing tasks that are due right after they were committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from application.ports import Dispatch, QueueUnavailable, TaskQueue, UnitOfWork
from domain.errors import ConcurrentModification, TaskNotFound
from domain.task import Task

log = logging.getLogger(__name__)

MAX_CONFLICTS = 5


def apply_move(
    uow: UnitOfWork,
    task_id: int,
    move: Callable[[Task], None],
    known: Task | None = None,
) -> Task:
    """Read the task, apply `move` (which raises if the state machine forbids it), write it back.

    If another writer got there first the move is applied again to the fresh task, so a
    concurrent change is never overwritten. `known` is a copy read just before, to spare a read:
    the write is then the unit's one statement.
    """
    for _ in range(MAX_CONFLICTS):
        with uow.one_write() if known is not None else uow:
            task = known if known is not None else uow.tasks.get(task_id)
            known = None
            if task is None:
                raise TaskNotFound(task_id)
            move(task)
            try:
                uow.tasks.save(task)
                uow.commit()
            except ConcurrentModification:
                continue
            return task
    raise ConcurrentModification(f"task {task_id} kept changing under {MAX_CONFLICTS} attempts")


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

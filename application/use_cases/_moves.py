"""What every move shares: applying it to a stored task under its row lock."""

from __future__ import annotations

from collections.abc import Callable

from application.errors import TaskNotFound
from application.ports import UnitOfWork
from domain.access import BUILT_IN, Principal, Scope
from domain.task import Task


def apply_move(
    uow: UnitOfWork,
    task_id: int,
    move: Callable[[Task], None],
    principal: Principal = BUILT_IN,
) -> Task:
    """Read the task with its row locked, apply `move` (which raises if the state machine forbids
    it), write it back, commit. The principal needs tasks:write (Forbidden); another tenant's
    task is TaskNotFound to it, exactly like a missing one.

    Concurrent writers of one task queue on its row lock instead of failing on each other's
    versions, so under a storm of moves each one is applied in turn to the task as the one
    before left it, and none is refused for the others' sake. Raises TaskNotFound, or what
    `move` raises; ConcurrentModification only if a writer bypassed the lock (a bug).
    """
    principal.require(Scope.WRITE)
    with uow:
        task = uow.tasks.get_for_update(task_id)
        if task is None or not principal.sees(task.tenant):
            raise TaskNotFound(task_id)
        move(task)
        uow.tasks.save(task)
        uow.commit()
    return task

from __future__ import annotations

from application.errors import TaskNotFound
from application.ports import UnitOfWork
from domain.access import BUILT_IN, Principal, Scope
from domain.task import Task


class GetTask:
    """One task by id. The principal needs tasks:read (Forbidden); a task it may not see (another
    tenant's, unless it is an admin) is TaskNotFound, exactly like a missing one."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def execute(self, task_id: int, principal: Principal = BUILT_IN) -> Task:
        principal.require(Scope.READ)
        with self._uow:
            task = self._uow.tasks.get(task_id)
        if task is None or not principal.sees(task.tenant):
            raise TaskNotFound(task_id)
        return task

from __future__ import annotations

from application.errors import TaskNotFound
from application.ports import Attempt, UnitOfWork
from domain.access import BUILT_IN, Principal, Scope


class GetAttempts:
    """A task's attempts, oldest first, as the store recorded them (start, end, outcome, error,
    start lateness). The principal needs tasks:read (Forbidden); a task it may not see is
    TaskNotFound, exactly like a missing one (see GetTask)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def execute(self, task_id: int, principal: Principal = BUILT_IN) -> list[Attempt]:
        principal.require(Scope.READ)
        with self._uow:
            task = self._uow.tasks.get(task_id)
            if task is None or not principal.sees(task.tenant):
                raise TaskNotFound(task_id)
            return self._uow.history.attempts(task_id)

from __future__ import annotations

from application.errors import TaskNotFound
from application.ports import UnitOfWork
from domain.task import Task


class GetTask:
    """One task by id; TaskNotFound if there is none."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def execute(self, task_id: int) -> Task:
        with self._uow:
            task = self._uow.tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

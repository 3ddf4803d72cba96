from __future__ import annotations

from dataclasses import dataclass, field

from application.ports import TaskFilter, TaskPage, UnitOfWork


@dataclass(frozen=True, slots=True, kw_only=True)
class ListTasksRequest:
    filter: TaskFilter = field(default_factory=TaskFilter)
    limit: int = 50
    offset: int = 0


class ListTasks:
    """A page of tasks, newest first, optionally filtered by status, type and priority, with
    the number of all matching tasks. No filter means every task."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def execute(self, request: ListTasksRequest) -> TaskPage:
        if request.limit < 1 or request.offset < 0:
            raise ValueError("limit must be positive and offset not negative")
        with self._uow:
            return self._uow.tasks.page(request.filter, request.limit, request.offset)

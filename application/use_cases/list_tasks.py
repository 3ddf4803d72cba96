from __future__ import annotations

from dataclasses import dataclass, field, replace

from application.ports import TaskFilter, TaskPage, UnitOfWork
from application.ports.repository import check_creation_window
from domain.access import BUILT_IN, Principal, Scope


@dataclass(frozen=True, slots=True, kw_only=True)
class ListTasksRequest:
    filter: TaskFilter = field(default_factory=TaskFilter)
    limit: int = 50
    offset: int = 0
    principal: Principal = BUILT_IN
    # A keyset cursor: only tasks with a smaller id (the previous page's `next_before_id`).
    before_id: int | None = None


class ListTasks:
    """A page of tasks, newest first, optionally filtered by status, type, priority and
    creation window, with the number of all matching tasks (from the exact counts, kept per
    tenant too; with a creation window, counted if the window holds at most COUNT_CAP tasks)
    and the cursor of the next page. No filter means every task the principal may see: its
    tenant's, or every tenant's for an admin. The principal needs tasks:read (Forbidden).
    Raises ValueError for a limit below 1, a negative offset, a cursor below 1 or a creation
    bound without a time zone."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def execute(self, request: ListTasksRequest) -> TaskPage:
        if request.limit < 1 or request.offset < 0:
            raise ValueError("limit must be positive and offset not negative")
        request.principal.require(Scope.READ)
        if request.before_id is not None and request.before_id < 1:
            raise ValueError("before_id must be positive")
        check_creation_window(request.filter)
        task_filter = replace(request.filter, tenant=request.principal.visible_tenant)
        with self._uow:
            return self._uow.tasks.page(
                task_filter, request.limit, request.offset, before_id=request.before_id
            )

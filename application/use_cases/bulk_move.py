from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from application.errors import TaskNotFound
from application.ports import TaskFilter, UnitOfWork
from application.ports.repository import check_creation_window
from application.use_cases.cancel_task import CancelTask
from application.use_cases.change_priority import ChangePriority, ChangePriorityRequest
from application.use_cases.retry_task import RetryTask
from domain.access import Principal, Scope
from domain.errors import IllegalTransition
from domain.priority import Priority

PAGE = 500


class BulkAction(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"
    CHANGE_PRIORITY = "change_priority"


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkMoveRequest:
    action: BulkAction
    principal: Principal
    filter: TaskFilter = field(default_factory=TaskFilter)
    # The new priority, for change_priority only.
    priority: Priority | None = None
    dry_run: bool = True
    # At most this many tasks are moved per call; `more` in the report says others match.
    limit: int = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkMoveReport:
    """`matched`: the tasks the filter matched when the call began (the exact counts; with a
    creation window, counted if it holds at most COUNT_CAP tasks, else None). Not a dry run:
    `moved` were moved, `skipped` could not be (the state machine refused the move, or the task
    was pruned meanwhile); `more` is true when the limit stopped the walk early."""

    matched: int | None
    dry_run: bool
    moved: int = 0
    skipped: int = 0
    more: bool = False


class BulkMove:
    """Retry, cancel or re-prioritise every task matching a filter, newest first, each through
    its own use case (RetryTask, CancelTask, ChangePriority), so each move keeps every rule a
    single one does: its own transaction, row lock, state machine and publication. A dry run
    only counts the matches. Needs the admin scope (Forbidden); ValueError if change_priority
    lacks its priority or a creation bound its time zone."""

    def __init__(
        self,
        uow: UnitOfWork,
        retry: RetryTask,
        cancel: CancelTask,
        change_priority: ChangePriority,
    ) -> None:
        self._uow = uow
        self._retry = retry
        self._cancel = cancel
        self._change_priority = change_priority

    def execute(self, request: BulkMoveRequest) -> BulkMoveReport:
        request.principal.require(Scope.ADMIN)
        check_creation_window(request.filter)
        move = self._move(request)
        task_filter = replace(request.filter, tenant=request.principal.visible_tenant)
        with self._uow:
            matched = self._uow.tasks.page(task_filter, 1, 0).total
        if request.dry_run:
            return BulkMoveReport(matched=matched, dry_run=True)
        moved = skipped = 0
        before_id: int | None = None
        while True:
            with self._uow:
                page = self._uow.tasks.page(task_filter, PAGE, 0, before_id=before_id)
            for task in page.items:
                assert task.id is not None
                if moved + skipped == request.limit:
                    return BulkMoveReport(
                        matched=matched, dry_run=False, moved=moved, skipped=skipped, more=True
                    )
                try:
                    move(task.id)
                    moved += 1
                except (IllegalTransition, TaskNotFound):
                    skipped += 1
            if page.next_before_id is None:
                return BulkMoveReport(matched=matched, dry_run=False, moved=moved, skipped=skipped)
            before_id = page.next_before_id

    def _move(self, request: BulkMoveRequest) -> Callable[[int], object]:
        principal = request.principal
        if request.action is BulkAction.RETRY:
            return lambda task_id: self._retry.execute(task_id, principal)
        if request.action is BulkAction.CANCEL:
            return lambda task_id: self._cancel.execute(task_id, principal)
        priority = request.priority
        if priority is None:
            raise ValueError("change_priority needs the new priority")
        return lambda task_id: self._change_priority.execute(
            ChangePriorityRequest(task_id=task_id, priority=priority, principal=principal)
        )

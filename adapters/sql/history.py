"""TaskHistory on SQLAlchemy Core: reads of what the triggers of revisions 0007 and 0008
record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, delete, func, select

from adapters.sql.errors import store_errors
from adapters.sql.tables import AWAITING_PUBLICATION, task_attempts, task_events, tasks
from application.ports import Attempt, AttemptResult, TaskEvent, TaskHistory
from domain.priority import Priority
from domain.task import TaskStatus

_ATTEMPTS = (
    select(task_attempts)
    .where(task_attempts.c.task_id == bindparam("task_id"))
    .order_by(task_attempts.c.id)
)
_RECENT = (
    select(task_attempts)
    .where(task_attempts.c.started_at >= bindparam("since", type_=task_attempts.c.started_at.type))
    .order_by(task_attempts.c.started_at.desc())
    .limit(bindparam("limit"))
)
_LAST_EVENT = select(func.coalesce(func.max(task_events.c.id), 0))
# Waiting for its start time: only an unpublished queued task can be (a task is published once
# due), so ix_tasks_due, which holds only those, answers it without reading finished tasks.
_NOT_YET_DUE = (
    select(tasks.c.priority, func.count().label("n"))
    .where(
        AWAITING_PUBLICATION,
        tasks.c.scheduled_for > bindparam("now", type_=tasks.c.scheduled_for.type),
    )
    .group_by(tasks.c.priority)
)


def _attempt(row: RowMapping) -> Attempt:
    return Attempt(
        task_id=row["task_id"],
        number=row["attempt"],
        dispatch_no=row["dispatch_no"],
        priority=Priority(row["priority"]),
        scheduled_for=row["scheduled_for"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=AttemptResult(row["outcome"]) if row["outcome"] else None,
        error=row["error"],
        worker=row["worker"],
    )


# Every stream of every task's events costs each API process one read of each event (see
# entrypoints/api/event_feed.py), so the rows become events the cheap way: plain tuples, and a
# dict's answer for each enum (calling the enum class costs about a microsecond per lookup).
_EVENT_COLUMNS = (
    task_events.c.id,
    task_events.c.task_id,
    task_events.c.tenant,
    task_events.c.status,
    task_events.c.priority,
    task_events.c.at,
)
_STATUSES = {status.value: status for status in TaskStatus}
_PRIORITIES = {priority.value: priority for priority in Priority}


def _event(row: tuple[int, int, str, str, int, datetime]) -> TaskEvent:
    id_, task_id, tenant, status, priority, at = row
    return TaskEvent(
        id=id_,
        task_id=task_id,
        tenant=tenant,
        status=_STATUSES[status],
        priority=_PRIORITIES[priority],
        at=at,
    )


class SqlTaskHistory(TaskHistory):
    def __init__(self, connection: Connection, *, read_only: bool = False) -> None:
        self._connection = connection
        self._read_only = read_only
        self.wrote = False

    def _rows(self, statement: Any, parameters: Any = None) -> list[RowMapping]:
        with store_errors():
            return list(self._connection.execute(statement, parameters).mappings())

    def attempts(self, task_id: int) -> list[Attempt]:
        return [_attempt(row) for row in self._rows(_ATTEMPTS, {"task_id": task_id})]

    def recent_attempts(self, started_since: datetime, limit: int) -> list[Attempt]:
        rows = self._rows(_RECENT, {"since": started_since, "limit": limit})
        return [_attempt(row) for row in rows]

    def events(self, after_id: int, limit: int, *, task_id: int | None = None) -> list[TaskEvent]:
        query = select(*_EVENT_COLUMNS).where(task_events.c.id > after_id)
        if task_id is not None:  # ix_task_events_task_id_id; else the primary key
            query = query.where(task_events.c.task_id == task_id)
        query = query.order_by(task_events.c.id).limit(limit)
        with store_errors():
            rows = self._connection.execute(query).all()
        return [_event(row) for row in rows]

    def last_event_id(self) -> int:
        with store_errors():
            return int(self._connection.execute(_LAST_EVENT).scalar_one())

    def prune_events(self, before: datetime, limit: int) -> int:
        if self._read_only:
            raise RuntimeError("a read-only unit of work does not write")
        self.wrote = True
        # Events are appended in time order, so the oldest are the lowest ids: the walk of the
        # primary key stops after `limit` of them.
        oldest = (
            select(task_events.c.id)
            .where(task_events.c.at < before)
            .order_by(task_events.c.id)
            .limit(limit)
        )
        statement = delete(task_events).where(task_events.c.id.in_(oldest.scalar_subquery()))
        with store_errors():
            return int(self._connection.execute(statement).rowcount)

    def not_yet_due(self, now: datetime) -> dict[Priority, int]:
        rows = self._rows(_NOT_YET_DUE, {"now": now})
        return {Priority(row["priority"]): int(row["n"]) for row in rows}

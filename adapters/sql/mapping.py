"""Task <-> row, by hand: the entity knows nothing of SQLAlchemy and stays a plain object that
may cross transactions (a worker claims in one and records the outcome in the next)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.priority import Priority
from domain.task import Task, TaskStatus, TaskType


def mutable_values(task: Task) -> dict[str, Any]:
    """What a move can change: a, b, pairs and created_at are fixed at creation, never rewritten."""
    return {
        "status": task.status.value,
        "priority": int(task.priority),
        "result": task.result,
        "results": task.results,
        "updated_at": task.updated_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "scheduled_for": task.scheduled_for,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "error_message": task.error_message,
        "dispatch_no": task.dispatch_no,
        "published_at": task.published_at,
        "lease_expires_at": task.lease_expires_at,
        "worker": task.worker,
    }


def insert_values(task: Task) -> dict[str, Any]:
    return {
        "type": task.type.value,
        "a": task.a,
        "b": task.b,
        "pairs": [list(pair) for pair in task.pairs] if task.pairs is not None else None,
        "created_at": task.created_at,
        "version": task.version,
        "tenant": task.tenant,
        "pair_count": len(task.operands),
        **mutable_values(task),
    }


def task_from_row(row: Mapping[Any, Any]) -> Task:
    pairs = row["pairs"]
    return Task(
        id=row["id"],
        type=TaskType(row["type"]),
        status=TaskStatus(row["status"]),
        priority=Priority(row["priority"]),
        a=row["a"],
        b=row["b"],
        result=row["result"],
        pairs=[(a, b) for a, b in pairs] if pairs is not None else None,
        results=row["results"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        scheduled_for=row["scheduled_for"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        error_message=row["error_message"],
        dispatch_no=row["dispatch_no"],
        published_at=row["published_at"],
        lease_expires_at=row["lease_expires_at"],
        version=row["version"],
        tenant=row["tenant"],
        worker=row["worker"],
    )

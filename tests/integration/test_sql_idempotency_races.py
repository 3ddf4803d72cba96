"""Two API processes storing one idempotency key at once, on PostgreSQL: the second waits for
the first's transaction, then replays its response if it committed, or creates the task itself
if it rolled back. Never two tasks for one key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from adapters.sql import SqlUnitOfWork
from adapters.sql.tables import tasks
from application.ports import IdempotencyKey, IdempotencyRecord, StoredResponse
from application.use_cases import CreateTask, CreateTaskRequest, IdempotentResponse
from domain.priority import Priority
from domain.task import Task
from tests.contract.repository_contract import NOW, SCHEDULE, single
from tests.fakes import FakeClock, RecordingQueue
from tests.integration.test_sql_concurrency import lock_waiters
from tests.processes import wait_until

FINGERPRINT = "c" * 64


def _respond(task: Task) -> StoredResponse:
    return StoredResponse(status=201, body=f'{{"id":{task.id}}}', location=f"/t/{task.id}")


def _request() -> CreateTaskRequest:
    key = IdempotencyKey(scope="default", key="k1", fingerprint=FINGERPRINT, respond=_respond)
    return CreateTaskRequest(a=1, b=2, priority=Priority.HIGH, idempotency=key)


def _task_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(tasks)).scalar_one()


def _first_process(
    engine: Engine, commits: bool, stored: threading.Event, end: threading.Event
) -> StoredResponse:
    """Stores its task and its key, waits to be told, then commits or rolls back (dies)."""
    uow = SqlUnitOfWork(engine)
    with uow:
        task = single()
        uow.tasks.add(task)
        assert task.id is not None
        record = IdempotencyRecord(
            scope="default",
            key="k1",
            fingerprint=FINGERPRINT,
            task_id=task.id,
            response=_respond(task),
            created_at=NOW,
            expires_at=NOW + timedelta(days=1),
        )
        assert uow.idempotency_keys.add_all([record], NOW) == {("default", "k1")}
        stored.set()
        end.wait(10)
        if commits:
            uow.commit()
    return record.response


@pytest.mark.parametrize("first_commits", [True, False], ids=["commits", "rolls-back"])
def test_a_key_stored_meanwhile_by_another_process_is_replayed_never_a_second_task(
    pg_engine: Engine, pg_uow: SqlUnitOfWork, first_commits: bool
) -> None:
    create = CreateTask(SqlUnitOfWork(pg_engine), RecordingQueue(), FakeClock(NOW), SCHEDULE, 3)
    stored, end = threading.Event(), threading.Event()

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_first_process, pg_engine, first_commits, stored, end)
        assert stored.wait(10)
        second = pool.submit(create.execute, _request())
        wait_until(lambda: lock_waiters(pg_engine) == 1, 10, what="the second INSERT to wait")
        end.set()
        first_response = first.result(timeout=10)
        outcome = second.result(timeout=10)

    assert isinstance(outcome, IdempotentResponse)
    if first_commits:
        assert outcome == IdempotentResponse(first_response, replayed=True)
    else:
        assert not outcome.replayed and outcome.response != first_response
    assert _task_count(pg_engine) == 1

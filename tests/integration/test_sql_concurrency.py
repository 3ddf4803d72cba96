"""Concurrency with real connections: the claim is won once, a write based on a stale read is
refused, dispatchers split the work."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from adapters.arithmetic import ExactArithmetic
from adapters.clock import SystemClock
from adapters.sql import SqlUnitOfWork
from application.errors import ConcurrentModification
from application.use_cases import AttemptOutcome, ExecuteTask, ExecuteTaskRequest
from domain.priority import Priority
from domain.retry import RetryPolicy
from domain.task import Task, TaskStatus
from tests.contract.repository_contract import NOW, SCHEDULE, added, single, stored
from tests.processes import wait_until

LEASE = timedelta(seconds=30)
RETRY = RetryPolicy(backoff_base=timedelta(seconds=1))


def lock_waiters(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def test_two_connections_claiming_one_task_exactly_one_wins(
    pg_engine: Engine, pg_uow: SqlUnitOfWork
) -> None:
    (task_id,) = added(pg_uow, single())
    first, second = SqlUnitOfWork(pg_engine), SqlUnitOfWork(pg_engine)

    def second_claims() -> Task | None:
        with second:
            # Waits for the first's row lock, then finds the row no longer queued: no error.
            task = second.tasks.claim(task_id, 1, NOW, LEASE)
            second.commit()
            return task

    with ThreadPoolExecutor(1) as pool, first:
        mine = first.tasks.claim(task_id, 1, NOW, LEASE)
        assert mine is not None
        outcome = pool.submit(second_claims)
        wait_until(lambda: lock_waiters(pg_engine) == 1, 10, what="the second UPDATE to wait")
        first.commit()
        assert outcome.result(timeout=10) is None

    claimed = stored(pg_uow, task_id)
    assert (claimed.status, claimed.attempts, claimed.version) == (TaskStatus.RUNNING, 1, 1)


def test_a_write_based_on_a_read_another_connection_changed_meanwhile_is_refused(
    pg_engine: Engine, pg_uow: SqlUnitOfWork
) -> None:
    (task_id,) = added(pg_uow, single())
    first, second = SqlUnitOfWork(pg_engine), SqlUnitOfWork(pg_engine)
    both_read, first_wrote = threading.Event(), threading.Event()

    def second_cancels() -> None:
        with second:
            task = second.tasks.get(task_id)
            assert task is not None
            both_read.set()
            first_wrote.wait(10)
            task.cancel(NOW)
            second.tasks.save(task)  # waits for the first's row lock, then finds a new version
            second.commit()

    with ThreadPoolExecutor(1) as pool, first:
        mine = first.tasks.get(task_id)
        assert mine is not None
        outcome = pool.submit(second_cancels)
        assert both_read.wait(10)
        mine.change_priority(Priority.HIGH, NOW, SCHEDULE)
        first.tasks.save(mine)
        first_wrote.set()
        wait_until(lambda: lock_waiters(pg_engine) == 1, 10, what="the second UPDATE to wait")
        first.commit()
        with pytest.raises(ConcurrentModification):
            outcome.result(timeout=10)

    changed = stored(pg_uow, task_id)
    assert (changed.status, changed.priority, changed.version) == (
        TaskStatus.QUEUED,
        Priority.HIGH,
        1,
    )


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_workers_racing_on_one_message_run_the_attempt_once(
    store: str, request: pytest.FixtureRequest
) -> None:
    prefix = "pg" if store == "postgresql" else store
    uow: SqlUnitOfWork = request.getfixturevalue(f"{prefix}_uow")
    engine: Engine = request.getfixturevalue(f"{prefix}_engine")
    (task_id,) = added(uow, single(2**62, 2**62))
    racers = 4
    start = threading.Barrier(racers)

    def run() -> AttemptOutcome:
        use_case = ExecuteTask(
            SqlUnitOfWork(engine), SystemClock(), ExactArithmetic(), RETRY, LEASE
        )
        start.wait(10)
        return use_case.execute(ExecuteTaskRequest(task_id, dispatch_no=1)).outcome

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(lambda _: run(), range(racers)))

    assert sorted(outcomes) == sorted(
        [AttemptOutcome.RECORDED] + [AttemptOutcome.STALE_MESSAGE] * (racers - 1)
    )
    done = stored(uow, task_id)
    assert (done.status, done.attempts, done.result) == (TaskStatus.SUCCESS, 1, 2**63)


def test_sqlite_serialises_writers_without_database_is_locked_errors(
    sqlite_uow: SqlUnitOfWork, sqlite_engine: Engine
) -> None:
    ids = added(sqlite_uow, *(single(i, i) for i in range(40)))

    def run_share(share: list[int]) -> None:
        use_case = ExecuteTask(
            SqlUnitOfWork(sqlite_engine), SystemClock(), ExactArithmetic(), RETRY, LEASE
        )
        for task_id in share:
            done = use_case.execute(ExecuteTaskRequest(task_id, 1))
            assert done.outcome is AttemptOutcome.RECORDED

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run_share, [ids[i::4] for i in range(4)]))

    assert all(stored(sqlite_uow, i).result == 2 * n for n, i in enumerate(ids))


def _due(uow: SqlUnitOfWork, limit: int) -> list[Task]:
    return uow.tasks.due_for_dispatch(NOW + timedelta(seconds=1), limit)


def _lost(uow: SqlUnitOfWork, limit: int) -> list[Task]:
    return uow.tasks.lost_messages(
        Priority.HIGH,
        waiting=0,
        counted_at=NOW + timedelta(seconds=60),
        published_before=NOW + timedelta(seconds=60),
        limit=limit,
    )


def _expired(uow: SqlUnitOfWork, limit: int) -> list[Task]:
    return uow.tasks.expired_leases(NOW + timedelta(seconds=60), limit)


def _published(task: Task) -> None:
    task.mark_published(NOW)


def _running(task: Task) -> None:
    task.claim(1, NOW, LEASE)


SELECTIONS: dict[str, tuple[Callable[[SqlUnitOfWork, int], list[Task]], Callable[[Task], None]]] = {
    "due_for_dispatch": (_due, lambda task: None),
    "lost_messages": (_lost, _published),
    "expired_leases": (_expired, _running),
}


@pytest.mark.parametrize("selection", SELECTIONS)
def test_two_dispatchers_never_select_the_same_task(
    selection: str, pg_engine: Engine, pg_uow: SqlUnitOfWork
) -> None:
    select, prepare = SELECTIONS[selection]
    tasks = [single(priority=Priority.HIGH) for _ in range(6)]
    for task in tasks:
        prepare(task)
    ids = set(added(pg_uow, *tasks))
    first, second = SqlUnitOfWork(pg_engine), SqlUnitOfWork(pg_engine)

    def second_selects() -> list[int]:
        with second:
            return [t.id for t in select(second, 10) if t.id is not None]

    with ThreadPoolExecutor(1) as pool, first:
        held = {t.id for t in select(first, 4)}
        # The first transaction is still open: its rows must be skipped, not waited for.
        other = set(pool.submit(second_selects).result(timeout=10))

    assert len(held) == 4
    assert held.isdisjoint(other)
    assert held | other == ids

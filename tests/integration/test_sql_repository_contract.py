"""The repository promises the in-memory fake keeps, kept by the SQL adapter on both backends."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import cast

import pytest
from sqlalchemy import Connection, Engine, QueuePool
from sqlalchemy.exc import OperationalError

from adapters.sql import SqlUnitOfWork
from application.ports import StoreUnavailable
from domain.task import TaskStatus
from tests.contract.history_contract import TaskHistoryContract
from tests.contract.idempotency_contract import IdempotencyKeysContract
from tests.contract.repository_contract import NOW, TaskRepositoryContract, added, single, stored
from tests.contract.scale_contract import CreationWindowContract, ScaleContract
from tests.contract.tenancy_contract import ApiKeysContract, TenancyContract


class TestPostgresRepository(TaskRepositoryContract):
    @pytest.fixture
    def uow(self, pg_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return pg_uow


class TestSqliteRepository(TaskRepositoryContract):
    @pytest.fixture
    def uow(self, sqlite_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return sqlite_uow


class TestPostgresScale(ScaleContract, CreationWindowContract):
    @pytest.fixture
    def uow(self, pg_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return pg_uow


class TestSqliteScale(ScaleContract, CreationWindowContract):
    @pytest.fixture
    def uow(self, sqlite_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return sqlite_uow


class TestPostgresIdempotencyKeys(IdempotencyKeysContract):
    @pytest.fixture
    def uow(self, pg_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return pg_uow


class TestSqliteIdempotencyKeys(IdempotencyKeysContract):
    @pytest.fixture
    def uow(self, sqlite_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return sqlite_uow


class TestPostgresTenancy(TenancyContract):
    @pytest.fixture
    def uow(self, pg_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return pg_uow


class TestSqliteTenancy(TenancyContract):
    @pytest.fixture
    def uow(self, sqlite_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return sqlite_uow


class TestPostgresApiKeys(ApiKeysContract):
    @pytest.fixture
    def uow(self, pg_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return pg_uow


class TestSqliteApiKeys(ApiKeysContract):
    @pytest.fixture
    def uow(self, sqlite_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return sqlite_uow


@pytest.fixture(params=["postgresql", "sqlite"])
def uow(request: pytest.FixtureRequest) -> SqlUnitOfWork:
    return request.getfixturevalue("pg_uow" if request.param == "postgresql" else "sqlite_uow")


def test_times_in_other_zones_are_stored_as_the_same_instant(uow: SqlUnitOfWork) -> None:
    paris = timezone(timedelta(hours=1))
    task = single(now=NOW.astimezone(paris))
    (task_id,) = added(uow, task)
    back = stored(uow, task_id)
    assert back.created_at == NOW
    assert back.created_at.tzinfo is not None and back.created_at.utcoffset() == timedelta(0)


def test_a_statement_after_commit_is_rolled_back_unless_committed_again(
    uow: SqlUnitOfWork,
) -> None:
    (task_id,) = added(uow, single())
    with uow:
        task = uow.tasks.get(task_id)
        assert task is not None
        uow.commit()
        task.cancel(NOW)
        uow.tasks.save(task)
    assert stored(uow, task_id).status is TaskStatus.QUEUED


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_the_connection_goes_back_to_the_pool_even_if_ending_the_transaction_fails(
    store: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = "pg" if store == "postgresql" else "sqlite"
    uow: SqlUnitOfWork = request.getfixturevalue(f"{prefix}_uow")
    engine: Engine = request.getfixturevalue(f"{prefix}_engine")
    (task_id,) = added(uow, single())
    pool = cast(QueuePool, engine.pool)
    checked_out = pool.checkedout()

    def commit_fails(self: Connection) -> None:
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Connection, "commit", commit_fails)
    with pytest.raises(StoreUnavailable), uow:
        assert uow.tasks.get(task_id) is not None  # a read: leaving the block COMMITs it
    assert pool.checkedout() == checked_out
    monkeypatch.undo()
    assert stored(uow, task_id).id == task_id  # and the unit of work can begin again


def test_the_id_of_a_rolled_back_task_is_not_handed_out_again(pg_uow: SqlUnitOfWork) -> None:
    # PostgreSQL sequences are not transactional. (SQLite's AUTOINCREMENT counter is, so there
    # the id of a rolled-back insert, never seen by anyone, may come back.)
    rolled_back = single()
    with pg_uow:
        pg_uow.tasks.add(rolled_back)
    (after_rollback,) = added(pg_uow, single())
    assert rolled_back.id is not None
    assert after_rollback > rolled_back.id


class TestPostgresHistory(TaskHistoryContract):
    @pytest.fixture
    def uow(self, pg_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return pg_uow


class TestSqliteHistory(TaskHistoryContract):
    @pytest.fixture
    def uow(self, sqlite_uow: SqlUnitOfWork) -> SqlUnitOfWork:
        return sqlite_uow

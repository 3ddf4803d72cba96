"""Engines: the URLs accepted, SQLite's file set-up and read-only transactions, and recovery
from lost PostgreSQL connections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.sql import SqlUnitOfWork, create_engine_for
from adapters.sql.engine import SQLITE_BUSY_TIMEOUT_MS
from adapters.sql.migrations import upgrade_to_head
from application.ports import TaskFilter
from domain.task import Task, TaskStatus
from tests.contract.repository_contract import NOW, added, single, stored


@pytest.fixture
def module_engine(pg_module_url: str) -> Iterator[Engine]:
    engine = create_engine_for(pg_module_url)
    yield engine
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg_3(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    engine = create_engine_for(plain)
    try:
        assert engine.dialect.driver == "psycopg"
        SqlUnitOfWork(engine).ping()
    finally:
        engine.dispose()


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        create_engine_for("mysql://localhost/taskman")


def test_sqlite_file_gets_its_directory_and_write_ahead_logging(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "dir" / "taskman.db"
    upgrade_to_head(f"sqlite:///{database}")
    engine = create_engine_for(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() > 0
    finally:
        engine.dispose()
    assert database.exists()


def test_on_sqlite_a_read_only_unit_of_work_reads_while_a_writer_holds_the_lock(
    sqlite_engine: Engine, sqlite_uow: SqlUnitOfWork
) -> None:
    (task_id,) = added(sqlite_uow, single())
    writer = SqlUnitOfWork(sqlite_engine)
    reader = SqlUnitOfWork(sqlite_engine, read_only=True)

    def read() -> tuple[Task | None, int, float]:
        started = time.monotonic()
        with reader:
            task = reader.tasks.get(task_id)
            total = reader.tasks.page(TaskFilter(), 10, 0).total
        reader.ping()
        return task, total, time.monotonic() - started

    with writer, ThreadPoolExecutor(1) as pool:
        task = writer.tasks.get(task_id)  # BEGIN IMMEDIATE: the write lock is held from here
        assert task is not None
        task.cancel(NOW)
        writer.tasks.save(task)
        writer.tasks.add(single(5, 5))
        # A reader that queued for the write lock would wait out the busy timeout, then fail.
        seen, total, took = pool.submit(read).result(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000 + 5)
        writer.commit()
    assert took < 2.0
    assert seen is not None and seen.status is TaskStatus.QUEUED  # the committed snapshot
    assert total == 1
    assert stored(sqlite_uow, task_id).status is TaskStatus.CANCELLED


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_a_read_only_unit_of_work_refuses_to_write(
    store: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(
        "pg_engine" if store == "postgresql" else "sqlite_engine"
    )
    request.getfixturevalue("pg_uow" if store == "postgresql" else "sqlite_uow")  # empties it
    reader = SqlUnitOfWork(engine, read_only=True)
    with reader, pytest.raises(RuntimeError, match="read-only"):
        reader.tasks.add(single())
    with reader:
        assert reader.tasks.page(TaskFilter(), 10, 0).total == 0


def test_the_pool_recovers_when_the_server_drops_every_connection(
    module_engine: Engine, pg_module_url: str
) -> None:
    uow = SqlUnitOfWork(module_engine)
    (task_id,) = added(uow, single())
    # Fill the pool with idle connections, then have the server end them all, as a restart does.
    connections = [module_engine.connect() for _ in range(3)]
    for connection in connections:
        connection.close()
    database = pg_module_url.rsplit("/", 1)[1]
    killer = create_engine_for(pg_module_url.rsplit("/", 1)[0] + "/postgres")
    try:
        with killer.connect() as connection:
            # With a timeout, pg_terminate_backend waits for the backend to exit, so its FATAL
            # message is on the pooled socket before the next checkout, as after a restart.
            ended = connection.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
                    "FROM (SELECT pid FROM pg_stat_activity "
                    "WHERE datname = :database AND pid <> pg_backend_pid() OFFSET 0) AS doomed"
                ),
                {"database": database},
            ).scalar_one()
    finally:
        killer.dispose()
    assert ended >= 1

    # No request fails: the checkout notices the dead connection and replaces it.
    assert stored(uow, task_id).id == task_id
    uow.ping()

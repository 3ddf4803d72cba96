"""Engines: the URLs accepted, SQLite's file set-up, and recovery from lost PostgreSQL
connections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.sql import SqlUnitOfWork, create_engine_for
from adapters.sql.migrations import upgrade_to_head
from tests.contract.repository_contract import added, single, stored


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
            ended = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :database AND pid <> pg_backend_pid()"
                ),
                {"database": database},
            ).scalar_one()
    finally:
        killer.dispose()
    assert ended >= 1

    # No request fails: the checkout notices the dead connection and replaces it.
    assert stored(uow, task_id).id == task_id
    uow.ping()

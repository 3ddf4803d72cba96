"""Database fixtures for every integration test (the SQL adapter's and the broker's).

- `pg_url`: a migrated PostgreSQL database for the whole session (its tables are yours to empty;
  `pg_uow` does it before each test).
- `pg_module_url`: a fresh migrated database per test module, for tests that need it to
  themselves (killing its connections, running processes against it).
- `pg_databases`: create more (`pg_databases.create(migrated=False)` for an empty one).
- `sqlite_url` / `sqlite_uow`: the same for the embedded SQLite file.

Every database created here is dropped at the end; names are unique per process (xdist-safe)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.sql import SqlUnitOfWork, create_engine_for
from adapters.sql.migrations import upgrade_to_head
from tests.integration.databases import PostgresDatabases, connect_admin

INTEGRATION_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


def empty_tasks(engine: Engine) -> None:
    """Empty the tables: tasks and the idempotency keys recorded with them."""
    with engine.begin() as connection:
        for table in ("tasks", "idempotency_keys", "api_keys"):
            empty = "TRUNCATE" if engine.dialect.name == "postgresql" else "DELETE FROM"
            connection.execute(text(f"{empty} {table}"))


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    try:
        admin = connect_admin()
    except RuntimeError as error:
        pytest.fail(f"{error} (start it: see DEVELOPERS.md)", pytrace=False)
    databases = PostgresDatabases(admin)
    try:
        yield databases
    finally:
        databases.drop_all()
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url(pg_databases: PostgresDatabases) -> str:
    return pg_databases.create()


@pytest.fixture(scope="module")
def pg_module_url(pg_databases: PostgresDatabases) -> Iterator[str]:
    url = pg_databases.create()
    yield url
    pg_databases.drop(url)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine_for(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_uow(pg_engine: Engine) -> SqlUnitOfWork:
    empty_tasks(pg_engine)
    return SqlUnitOfWork(pg_engine)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'taskman.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine_for(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_uow(sqlite_engine: Engine) -> SqlUnitOfWork:
    empty_tasks(sqlite_engine)
    return SqlUnitOfWork(sqlite_engine)

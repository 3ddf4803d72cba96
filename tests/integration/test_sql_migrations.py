"""The migrations: every step reversible, the result equal to what the code declares, and the
`migrate` entry point building the schema on an empty PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from adapters.sql import create_engine_for
from adapters.sql.migrations import alembic_config
from adapters.sql.tables import metadata
from tests.integration.databases import PostgresDatabases

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database_url(
    request: pytest.FixtureRequest, pg_databases: PostgresDatabases, tmp_path: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = pg_databases.create(migrated=False)
    yield url
    pg_databases.drop(url)


def tables_in(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_stairway_every_revision_goes_up_and_down_one_at_a_time(
    empty_database_url: str,
) -> None:
    config = alembic_config(empty_database_url)
    revisions = list(ScriptDirectory.from_config(config).walk_revisions("base", "heads"))
    assert revisions, "no migrations found"
    for revision in reversed(revisions):  # oldest first
        command.upgrade(config, revision.revision)
        command.downgrade(config, revision.down_revision or "base")
        command.upgrade(config, revision.revision)
    assert "tasks" in tables_in(empty_database_url)
    command.downgrade(config, "base")
    assert tables_in(empty_database_url) <= {"alembic_version"}


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_the_migrated_schema_is_the_schema_the_code_declares(
    store: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if store == "postgresql" else "sqlite_url")
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def run_migrate(env_overrides: dict[str, str], cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    env.update(env_overrides, PYTHONPATH=str(REPOSITORY))
    subprocess.run(
        [sys.executable, "-m", "entrypoints.migrate"], cwd=cwd, env=env, check=True, timeout=60
    )


def test_migrate_builds_the_schema_on_an_empty_postgresql(
    pg_databases: PostgresDatabases, tmp_path: Path
) -> None:
    url = pg_databases.create(migrated=False)
    try:
        # Plain postgresql:// as an operator would write it; the adapter picks psycopg 3.
        run_migrate(
            {"DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://")}, tmp_path
        )
        assert {"tasks", "alembic_version"} <= tables_in(url)
    finally:
        pg_databases.drop(url)


def test_migrate_without_database_url_builds_the_embedded_sqlite_file(tmp_path: Path) -> None:
    run_migrate({}, tmp_path)
    database = tmp_path / "var" / "taskman.db"
    assert database.exists()
    assert "tasks" in tables_in(f"sqlite:///{database}")


def test_migrate_on_a_database_that_does_not_exist_says_so_in_one_line(
    pg_databases: PostgresDatabases, tmp_path: Path
) -> None:
    missing = pg_databases.create(migrated=False)
    pg_databases.drop(missing)  # a well-formed URL whose database is gone
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    env.update(DATABASE_URL=missing, PYTHONPATH=str(REPOSITORY))

    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip()
    assert len(output.splitlines()) == 1, output
    database = missing.rsplit("/", 1)[1]
    assert database in output and "does not exist" in output, output
    assert "Traceback" not in output

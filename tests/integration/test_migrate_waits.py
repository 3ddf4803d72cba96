"""`migrate` waits for a database that does not accept connections yet (compose may start it
while PostgreSQL still initialises), and gives up, non-zero, after MIGRATE_WAIT_SECONDS."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from tests.commands import MIGRATE
from tests.fault.servers import OwnPostgres
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import base_environment, launch


def exit_code(process: ManagedProcess, timeout: float) -> int | None:
    wait_until(lambda: not process.running, timeout, what=f"{process.name} exits")
    return process.stop()


def test_migrate_retries_until_postgresql_accepts_then_migrates(tmp_path: Path) -> None:
    server = OwnPostgres()  # its port is chosen; nothing listens there until start()
    env = base_environment(DATABASE_URL=server.url, MIGRATE_WAIT_SECONDS="120")
    migrate = launch("migrate", MIGRATE, env, tmp_path)
    migrate.start()
    try:
        # Two failed tries logged: it keeps trying, rather than failing once and exiting.
        migrate.wait_for_output(r"not accepting connections yet \(try 2\)", timeout=30)
        # initdb, start, then CREATE DATABASE: migrate meets a refused port, then a missing
        # database, then the database.
        server.start()
        assert exit_code(migrate, timeout=60) == 0, migrate.log_tail()
        engine = create_engine(server.url)
        try:
            tables = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"alembic_version", "tasks"} <= tables
    finally:
        migrate.stop()
        server.stop()


def test_migrate_gives_up_non_zero_after_its_wait(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/taskman"
    env = base_environment(DATABASE_URL=url, MIGRATE_WAIT_SECONDS="1")
    migrate = launch("migrate", MIGRATE, env, tmp_path)
    migrate.start()
    try:
        assert exit_code(migrate, timeout=30) == 1
        assert "did not accept a connection in 1 s" in migrate.output()
    finally:
        migrate.stop()

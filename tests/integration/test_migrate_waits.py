"""`migrate` waits for a database that does not accept connections yet (compose may start it
while PostgreSQL still initialises), and gives up, non-zero, after MIGRATE_WAIT_SECONDS."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, make_url

from tests.commands import MIGRATE
from tests.fault.servers import OwnPostgres
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import base_environment, launch


def exit_code(process: ManagedProcess, timeout: float) -> int | None:
    wait_until(lambda: not process.running, timeout, what=f"{process.name} exits")
    return process.stop()


def test_migrate_retries_until_postgresql_accepts_then_migrates(tmp_path: Path) -> None:
    server = OwnPostgres()  # its port is chosen; nothing listens there until start()
    # The database initdb makes, so it exists the moment the server accepts (as under compose,
    # where the image creates its database before it listens on TCP): a database that is missing
    # once the server answers is an error migrate does not wait out.
    url = make_url(server.url).set(database="postgres").render_as_string(hide_password=False)
    env = base_environment(DATABASE_URL=url, MIGRATE_WAIT_SECONDS="120")
    migrate = launch("migrate", MIGRATE, env, tmp_path)
    migrate.start()
    try:
        # Two failed tries logged: it keeps trying, rather than failing once and exiting.
        migrate.wait_for_output(r"not accepting connections yet \(try 2\)", timeout=30)
        server.start()
        assert exit_code(migrate, timeout=60) == 0, migrate.log_tail()
        engine = create_engine(url)
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


def test_a_missing_database_is_one_line_at_once(tmp_path: Path) -> None:
    server = OwnPostgres()
    server.start()
    try:
        url = make_url(server.url).set(database="no_such_database")
        env = base_environment(
            DATABASE_URL=url.render_as_string(hide_password=False), MIGRATE_WAIT_SECONDS="60"
        )
        migrate = launch("migrate", MIGRATE, env, tmp_path)
        migrate.start()
        # Not waited out: the server answered that the database does not exist.
        assert exit_code(migrate, timeout=15) == 1
        lines = [line for line in migrate.log_tail().splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert "no_such_database" in lines[0] and "does not exist" in lines[0]
        assert "Traceback" not in lines[0]
    finally:
        server.stop()

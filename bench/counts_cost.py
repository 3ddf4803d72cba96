"""`python -m bench.counts_cost [--tasks N]`: what the exact counts' triggers cost a task.

On a fresh, migrated PostgreSQL database (dropped afterwards), PostgreSQL itself runs the
statements of N tasks' lives in a loop (a DO block: no client round trip, whose milliseconds
would hide the microseconds measured here): N one-row creates, N claims, N publications (which
move no count), N outcomes, then one retention DELETE of all of them; each the statement the
repository runs, one row at a time. Timed with the counting triggers enabled and then disabled
(`ALTER TABLE tasks DISABLE TRIGGER USER`), alternately, five times each; prints the median
microseconds per statement of each, and the difference. Needs only PostgreSQL on
127.0.0.1:5432."""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import Connection, text

from adapters.sql import create_engine_for
from tests.integration.databases import PostgresDatabases, connect_admin

MOVES = {
    "create": """
        INSERT INTO tasks (type, status, priority, a, b, created_at, updated_at, scheduled_for,
                           attempts, max_attempts, dispatch_no, version)
        VALUES ('single', 'queued', 1, i, 1, now(), now(), now(), 0, 3, 1, 1)
    """,
    "publication": "UPDATE tasks SET published_at = now(), version = version + 1 "
    "WHERE id = first + i AND status = 'queued' AND published_at IS NULL",
    "claim": "UPDATE tasks SET status = 'running', attempts = attempts + 1, started_at = now(), "
    "lease_expires_at = now() + interval '1 minute', updated_at = now(), version = version + 1 "
    "WHERE id = first + i AND status = 'queued' AND dispatch_no = 1",
    "outcome": "UPDATE tasks SET status = 'success', result = i + 1, finished_at = now(), "
    "lease_expires_at = NULL, updated_at = now(), version = version + 1 "
    "WHERE id = first + i AND status = 'running' AND dispatch_no = 1",
}


def _timed(connection: Connection, statement: str, tasks: int) -> float:
    block = (
        "DO $$ DECLARE first bigint := (SELECT coalesce(min(id), 1) - 1 FROM tasks); "
        f"BEGIN FOR i IN 1..{tasks} LOOP {statement}; END LOOP; END $$"
    )
    began = time.perf_counter()
    connection.execute(text(block))
    return 1e6 * (time.perf_counter() - began) / tasks


def one_life(connection: Connection, tasks: int) -> dict[str, float]:
    """Microseconds per statement of each move, over `tasks` tasks, and per pruned row."""
    timings: dict[str, float] = {}
    for move, statement in MOVES.items():
        timings[move] = _timed(connection, statement, tasks)
        if move == "create":  # untimed: plans for the table as it now is
            connection.execute(text("ANALYZE tasks"))
    began = time.perf_counter()
    connection.execute(text("DELETE FROM tasks WHERE status = 'success'"))
    timings["prune, per row"] = 1e6 * (time.perf_counter() - began) / tasks
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args(argv)
    admin = connect_admin()
    databases = PostgresDatabases(admin)
    try:
        engine = create_engine_for(databases.create()).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        with engine.connect() as connection:
            for _ in range(5):
                for counting in (True, False):
                    verb = "ENABLE" if counting else "DISABLE"
                    connection.execute(text(f"ALTER TABLE tasks {verb} TRIGGER USER"))
                    connection.execute(text("TRUNCATE tasks"))
                    connection.execute(text("VACUUM tasks"))
                    runs[counting].append(one_life(connection, args.tasks))
        engine.dispose()
    finally:
        databases.drop_all()
        admin.dispose()
    for move in runs[True][0]:
        on = statistics.median(run[move] for run in runs[True])
        off = statistics.median(run[move] for run in runs[False])
        print(
            f"{move:15} with counts {on:6.1f} us, without {off:6.1f} us: {on - off:+6.1f} us "
            f"({100 * (on - off) / off:+.0f}%)"
        )


if __name__ == "__main__":
    main()

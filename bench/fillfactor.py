"""`python -m bench.fillfactor [--history N] [--tasks N]`: which fillfactor the tasks table needs.

A fillfactor below 100 leaves room on each heap page so that a row's next version can stay on
its page; if no indexed column changes, the update is then HOT (no index entries written; see
PostgreSQL's "Heap-Only Tuples" in storage/heap/README.HOT). This measures it instead of
assuming it: on a fresh, migrated PostgreSQL database (dropped afterwards), for each fillfactor
the tasks table is emptied, filled with N finished tasks of history, rewritten at that
fillfactor (VACUUM FULL), and then PostgreSQL itself runs the statements of M tasks' lives
(bench.counts_cost's: create, publication, claim, outcome, one row at a time in a DO block).
Prints, per fillfactor: the share of updates that were HOT (pg_stat_user_tables), the median
microseconds per statement of each move over three runs, and the table's size. Needs only
PostgreSQL on 127.0.0.1:5432."""

from __future__ import annotations

import argparse
import statistics

from sqlalchemy import Connection, text

from adapters.sql import create_engine_for
from bench.counts_cost import MOVES, _timed
from tests.integration.databases import PostgresDatabases, connect_admin

FILLFACTORS = (100, 90, 70)

HISTORY = """
    INSERT INTO tasks (id, type, status, priority, a, b, result, created_at, updated_at,
                       scheduled_for, started_at, finished_at, attempts, max_attempts,
                       dispatch_no, version)
    SELECT 1000000000000 + i, 'single', 'success', 1 + i % 3, i, 1, i + 1, now(), now(), now(),
           now(), now(), 1, 3, 1, 3
    FROM generate_series(1, :n) AS i
"""
# The history's ids sit far above those the lives are given (1, 2, ...: the sequence restarts),
# so each move's statements (bench.counts_cost, which count from the lowest id) find the lives.


def _updates(connection: Connection) -> tuple[int, int]:
    connection.execute(text("SELECT pg_stat_force_next_flush()"))
    row = connection.execute(
        text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'tasks'")
    ).one()
    return int(row[0]), int(row[1])


def one_fillfactor(
    connection: Connection, fillfactor: int, history: int, tasks: int
) -> dict[str, float]:
    connection.execute(text("TRUNCATE tasks RESTART IDENTITY"))
    connection.execute(text(HISTORY), {"n": history})
    connection.execute(text(f"ALTER TABLE tasks SET (fillfactor = {fillfactor})"))
    connection.execute(text("VACUUM FULL ANALYZE tasks"))
    updated, hot = _updates(connection)
    figures = {}
    for move, statement in MOVES.items():
        figures[move] = _timed(connection, statement, tasks)
        if move == "create":  # untimed: plans for the table as it now is, as counts_cost does
            connection.execute(text("ANALYZE tasks"))
    updated_after, hot_after = _updates(connection)
    figures["HOT %"] = 100 * (hot_after - hot) / max(1, updated_after - updated)
    size = connection.execute(text("SELECT pg_table_size('tasks')")).scalar_one()
    figures["table MB"] = int(size) / 2**20
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args(argv)
    admin = connect_admin()
    databases = PostgresDatabases(admin)
    runs: dict[int, list[dict[str, float]]] = {f: [] for f in FILLFACTORS}
    try:
        engine = create_engine_for(databases.create()).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as connection:
            for _ in range(3):
                for fillfactor in FILLFACTORS:
                    runs[fillfactor].append(
                        one_fillfactor(connection, fillfactor, args.history, args.tasks)
                    )
        engine.dispose()
    finally:
        databases.drop_all()
        admin.dispose()
    moves = list(runs[FILLFACTORS[0]][0])
    print("fillfactor  " + "  ".join(f"{move:>12}" for move in moves))
    for fillfactor in FILLFACTORS:
        medians = [statistics.median(run[move] for run in runs[fillfactor]) for move in moves]
        print(f"{fillfactor:>10}  " + "  ".join(f"{value:12.1f}" for value in medians))
    print("(moves: median microseconds per statement; HOT %: of the updates; table MB: after)")


if __name__ == "__main__":
    main()

"""EXPLAIN ANALYZE of the SQL adapter's read queries on a 1,000,000-row scratch database.

    .venv/bin/python -m scripts.explain_queries [--rows N] [--admin-url URL]

Creates taskman_explain_<pid>, migrates it with the real migrations, fills it with a realistic
mix (old tasks finished; a recent tail queued, published or running), then calls the repository
itself and explains each SELECT exactly as it was sent (same SQL, same parameters). The scratch
database is dropped at the end, whatever happens."""

from __future__ import annotations

import argparse
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text

from adapters.sql import SqlUnitOfWork, create_engine_for
from adapters.sql.migrations import upgrade_to_head
from application.ports import TaskFilter
from domain.priority import Priority
from domain.task import TaskStatus, TaskType

START = datetime(2026, 1, 1, tzinfo=UTC)
RECENT = 20_000  # the tail of the table that is still in flight

FILL = """
WITH g AS (
    SELECT n, random() AS rt, random() AS rs, random() AS rp,
           :start + n * interval '1 second' AS created,
           n > :rows - :recent AS recent
    FROM generate_series(1, :rows) AS n
), s AS (
    SELECT n, created,
        CASE WHEN rt < 0.1 THEN 'batch' ELSE 'single' END AS type,
        CASE WHEN NOT recent THEN
                CASE WHEN rs < 0.94 THEN 'success' WHEN rs < 0.98 THEN 'failed'
                     ELSE 'cancelled' END
             ELSE
                CASE WHEN rs < 0.40 THEN 'success' WHEN rs < 0.45 THEN 'failed'
                     WHEN rs < 0.55 THEN 'running' ELSE 'queued' END
        END AS status,
        CASE WHEN rp < 0.3 THEN 1 WHEN rp < 0.8 THEN 2 ELSE 3 END AS priority
    FROM g
)
INSERT INTO tasks (type, status, priority, a, b, result, pairs, results, created_at,
    updated_at, started_at, finished_at, scheduled_for, attempts, max_attempts, error_message,
    dispatch_no, published_at, lease_expires_at, version)
SELECT type, status, priority,
    CASE WHEN type = 'single' THEN n END,
    CASE WHEN type = 'single' THEN n + 1 END,
    CASE WHEN type = 'single' AND status = 'success' THEN 2 * n + 1 END,
    CASE WHEN type = 'batch' THEN jsonb_build_array(jsonb_build_array(n, 1),
                                                    jsonb_build_array(n, 2)) END,
    CASE WHEN type = 'batch' AND status = 'success' THEN jsonb_build_array(n + 1, n + 2) END,
    created, created,
    CASE WHEN status IN ('success', 'failed', 'running') THEN created + interval '1 s' END,
    CASE WHEN status IN ('success', 'failed', 'cancelled') THEN created + interval '2 s' END,
    created + (priority - 1) * interval '5 s',
    CASE WHEN status IN ('success', 'failed', 'running') THEN 1 ELSE 0 END,
    3,
    CASE WHEN status = 'failed' THEN 'boom' END,
    1,
    CASE WHEN status = 'queued' AND n % 2 = 0 THEN NULL
         WHEN status = 'cancelled' THEN NULL
         ELSE created END,
    CASE WHEN status = 'running' THEN created + interval '60 s' END,
    0
FROM s ORDER BY n
"""


class StatementLog:
    """Every SELECT the repository sends, with its parameters, in order."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        # DELETE too (retention): explain() rolls back, so ANALYZE deletes nothing for good.
        if statement.lstrip().upper().startswith(("SELECT", "DELETE")):
            self.statements.append((statement, params))


def explain(engine: Engine, statement: str, params: Any) -> list[str]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).all()
        connection.rollback()  # FOR UPDATE really locks; let go at once
    return [row[0] for row in rows]


COLUMN_LIST = re.compile(r"SELECT tasks\.id, .*? FROM")
KEY_LINE = re.compile(r"Scan|Sort|Limit|Aggregate|LockRows|Execution Time|Rows Removed")


def report(title: str, engine: Engine, log: StatementLog) -> None:
    for statement, params in log.statements:
        shown = COLUMN_LIST.sub("SELECT tasks.* FROM", " ".join(statement.split()))
        print(f"\n=== {title}\n{shown}\n    params: {params}")
        for line in explain(engine, statement, params):
            if KEY_LINE.search(line):
                print(f"    {line.strip()}")
    log.statements.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgresql+psycopg://root@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    name = f"taskman_explain_{os.getpid()}"
    url = make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        upgrade_to_head(url)
        engine = create_engine_for(url)
        with engine.begin() as connection:
            connection.execute(text(FILL), {"rows": args.rows, "recent": RECENT, "start": START})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE tasks")
            counts = connection.exec_driver_sql(
                "SELECT status, count(*) FROM tasks GROUP BY status ORDER BY 2 DESC"
            ).all()
        print(f"{args.rows} rows: {dict(counts)}")
        now = START + timedelta(seconds=args.rows + 1)
        measure(engine, now)
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(engine: Engine, now: datetime) -> None:
    log = StatementLog(engine)
    uow = SqlUnitOfWork(engine)
    pages = {
        "list, no filter, first page": (TaskFilter(), 0),
        "list, no filter, offset 10000": (TaskFilter(), 10_000),
        "list, status=queued": (TaskFilter(status=TaskStatus.QUEUED), 0),
        "list, status=failed": (TaskFilter(status=TaskStatus.FAILED), 0),
        "list, type=batch": (TaskFilter(type=TaskType.BATCH), 0),
        "list, priority=1 and status=running": (
            TaskFilter(priority=Priority.HIGH, status=TaskStatus.RUNNING),
            0,
        ),
    }
    for title, (task_filter, offset) in pages.items():
        with uow:
            uow.tasks.page(task_filter, 50, offset)
        report(f"{title} (page of 50, then its total from the counts)", engine, log)
    # Creation windows: FILL creates one task a second from START; `now` is past the last.
    second = timedelta(seconds=1)
    windows = {
        "10 minutes, long ago": TaskFilter(
            created_after=START + 100_000 * second, created_before=START + 100_600 * second
        ),
        "8 days, long ago, status=failed": TaskFilter(
            status=TaskStatus.FAILED,
            created_after=START + 100_000 * second,
            created_before=START + 800_000 * second,
        ),
        "before a time long ago, priority=3": TaskFilter(
            priority=Priority.LOW, created_before=START + 300_000 * second
        ),
        "the last hour, status=queued": TaskFilter(
            status=TaskStatus.QUEUED, created_after=now - 3600 * second
        ),
    }
    for title, task_filter in windows.items():
        with uow:
            uow.tasks.page(task_filter, 50, 0)
        report(f"list by creation window: {title} (page of 50, then its total)", engine, log)
    with uow:
        first = uow.tasks.page(TaskFilter(), 50, 0)
    assert first.next_before_id is not None
    deep = first.next_before_id - 50 * 998  # ids are dense here: page 1,000's cursor
    with uow:
        uow.tasks.page(TaskFilter(), 50, 0, before_id=deep)
        uow.tasks.page(TaskFilter(status=TaskStatus.FAILED), 50, 0, before_id=deep)
    log.statements = [entry for entry in log.statements if "task_counts" not in entry[0]]
    report("list, page 1,000 by cursor (no filter, then status=failed)", engine, log)
    with uow:
        uow.tasks.prune_finished(TaskStatus.SUCCESS, now, 500)
    report("retention: prune_finished success (500; rolled back)", engine, log)
    with uow:
        uow.tasks.due_for_dispatch(now, 500)
    report("dispatcher: due_for_dispatch (500)", engine, log)
    with uow:
        uow.tasks.lost_messages(
            Priority.MEDIUM,
            waiting=0,
            counted_at=now,
            published_before=now - timedelta(seconds=30),
            limit=500,
        )
    report("dispatcher: lost_messages, empty queue (500)", engine, log)
    with uow:
        uow.tasks.lost_messages(
            Priority.MEDIUM,
            waiting=2_000,
            counted_at=now,
            published_before=now - timedelta(seconds=30),
            limit=500,
        )
    report("dispatcher: lost_messages, 2000 messages waiting (500)", engine, log)
    with uow:
        uow.tasks.expired_leases(now, 500)
    report("dispatcher: expired_leases (500)", engine, log)


if __name__ == "__main__":
    main()

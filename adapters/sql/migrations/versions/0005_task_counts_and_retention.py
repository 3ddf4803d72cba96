"""Exact task counts kept by triggers, the retention index, storage settings of the tasks table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

task_counts holds signed deltas per (status, priority, type): every statement that inserts,
updates or deletes tasks appends its net change, in its own transaction, so a count is the sum of
a small table and never a scan of tasks. Appending (not updating one row per key) keeps
concurrent writers apart: no hot row. The dispatcher's maintenance folds the deltas back into
one row per key (SqlTaskRepository.fold_counts).

On PostgreSQL, inserts and deletes (a group of creates, a retention batch) have statement-level
triggers that read the statement's transition table and append one row per key (500 creates: at
most six rows). Updates have a row-level trigger whose WHEN clause PostgreSQL evaluates without
calling it, so only a move that changes the status or the priority pays for it (a claim, an
outcome: two rows), and a publication or a lease renewal pays nothing (a statement-level update
trigger would build its transition tables for every UPDATE, the dispatcher's included). `python
-m bench.counts_cost` measures what they add to each statement. SQLite has only row-level
triggers, one delta row per row changed; it serialises writers anyway. TRUNCATE (tests,
operators) empties the counts too.

The counts start from the rows already there, so the migration is exact on a live table too
(it runs in one transaction; writers wait for it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = "status IN ('success', 'failed', 'cancelled')"

# A queue-like table: autovacuum by a fixed number of changed rows, not by a fraction of the
# table (the default 20% means one vacuum per 2,000,000 changes at 10,000,000 rows), so the cost
# of keeping it clean does not grow with the finished tasks it holds. The fillfactor stays at
# 100: every update a task goes through changes an indexed column, so none is HOT whatever room
# a page keeps (measured by `python -m bench.fillfactor`: 0% HOT at 100, 90 and 70), and room
# kept would only make the table larger (docs/benchmark.md, "At scale").
TASKS_STORAGE = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "10000",
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "100000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "50000",
}
COUNTS_STORAGE = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "1000",
}

PG_FUNCTIONS = {
    "insert": """
        INSERT INTO task_counts (status, priority, type, n)
        SELECT status, priority, type, count(*) FROM new_rows GROUP BY status, priority, type
    """,
    "update": """
        INSERT INTO task_counts (status, priority, type, n)
        VALUES (OLD.status, OLD.priority, OLD.type, -1), (NEW.status, NEW.priority, NEW.type, 1)
    """,
    "delete": """
        INSERT INTO task_counts (status, priority, type, n)
        SELECT status, priority, type, -count(*) FROM old_rows GROUP BY status, priority, type
    """,
}
CHANGED = (
    "OLD.status IS DISTINCT FROM NEW.status OR OLD.priority IS DISTINCT FROM NEW.priority "
    "OR OLD.type IS DISTINCT FROM NEW.type"
)
PG_TRIGGERS = {
    "insert": "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "update": f"AFTER UPDATE OF status, priority, type ON tasks FOR EACH ROW WHEN ({CHANGED})",
    "delete": "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
}

SQLITE_TRIGGERS = {
    "insert": """
        CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
            INSERT INTO task_counts (status, priority, type, n)
            VALUES (NEW.status, NEW.priority, NEW.type, 1);
        END
    """,
    "update": """
        CREATE TRIGGER tasks_count_update AFTER UPDATE OF status, priority, type ON tasks
        WHEN OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority
            OR OLD.type IS NOT NEW.type
        BEGIN
            INSERT INTO task_counts (status, priority, type, n)
            VALUES (OLD.status, OLD.priority, OLD.type, -1),
                   (NEW.status, NEW.priority, NEW.type, 1);
        END
    """,
    "delete": """
        CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
            INSERT INTO task_counts (status, priority, type, n)
            VALUES (OLD.status, OLD.priority, OLD.type, -1);
        END
    """,
}


def _options(options: dict[str, str]) -> str:
    return ", ".join(f"{name} = {value}" for name, value in options.items())


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_tasks_finished",
        "tasks",
        ["status", "finished_at"],
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )
    op.execute(
        "INSERT INTO task_counts (status, priority, type, n) "
        "SELECT status, priority, type, count(*) FROM tasks GROUP BY status, priority, type"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE tasks SET ({_options(TASKS_STORAGE)})")
        op.execute(f"ALTER TABLE task_counts SET ({_options(COUNTS_STORAGE)})")
        for verb, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION tasks_count_{verb}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body}; RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER tasks_count_{verb} {PG_TRIGGERS[verb]} "
                f"EXECUTE FUNCTION tasks_count_{verb}()"
            )
        op.execute(
            "CREATE FUNCTION tasks_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN DELETE FROM task_counts; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER tasks_count_truncate AFTER TRUNCATE ON tasks "
            "FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_truncate()"
        )
    else:
        for trigger in SQLITE_TRIGGERS.values():
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for verb in [*PG_FUNCTIONS, "truncate"]:
            op.execute(f"DROP TRIGGER tasks_count_{verb} ON tasks")
            op.execute(f"DROP FUNCTION tasks_count_{verb}()")
        op.execute(f"ALTER TABLE tasks RESET ({', '.join(TASKS_STORAGE)})")
    else:
        for verb in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER tasks_count_{verb}")
    op.drop_index("ix_tasks_finished", table_name="tasks")
    op.drop_table("task_counts")

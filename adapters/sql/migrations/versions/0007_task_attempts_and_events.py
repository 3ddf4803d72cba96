"""Each task's attempts and the log of its moves, written by triggers on tasks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

The store records them itself, in the transaction of the statement that moves the task, so no
writer has to remember to (the worker's claim and outcome stay one UPDATE each) and nothing
recorded can disagree with the task:

- task_attempts: a claim (queued -> running) opens an attempt: its number, dispatch number,
  priority, when it was due (`scheduled_for`) and when it started; lateness is the difference.
  The move out of running closes it: when, the outcome (the metrics' words: `success`;
  `retried`: it raised and the task is queued again; `failed`: it raised with the budget spent;
  `lost`: its lease expired, recognised by the domain's LEASE_EXPIRED_MESSAGE; `released`: the
  worker gave the claim back before the attempt began, its count taken back) and the error.
  The worker's name is not on the tasks row here (revision 0008 adds it and records it).
- task_events: one row per create and per change of status or priority; its id (a sequence)
  is the Server-Sent Events id, so a client resumes after the last one it saw.

Both go with their task (a delete trigger, not a foreign key: a key would cost every insert a
lookup of the task); task_events is also pruned by age (EVENTS_RETENTION_SECONDS). As in 0005,
PostgreSQL writes a create's events from the statement's transition table and has a row-level
update trigger whose WHEN clause spares the moves that change neither status nor priority (a
publication, a lease renewal); SQLite has row-level triggers only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ATTEMPT = """
    INSERT INTO task_attempts
        (task_id, attempt, dispatch_no, priority, scheduled_for, started_at)
    VALUES (NEW.id, NEW.attempts, NEW.dispatch_no, NEW.priority, OLD.scheduled_for,
            NEW.started_at)
"""
# The outcome in the metrics' words; the message is domain.task.LEASE_EXPIRED_MESSAGE as of this
# revision (a migration never imports the code).
CLOSE_ATTEMPT = """
    UPDATE task_attempts SET finished_at = NEW.updated_at,
        outcome = CASE WHEN NEW.status = 'success' THEN 'success'
            WHEN NEW.attempts < OLD.attempts THEN 'released'
            WHEN NEW.error_message = 'the worker running this attempt was lost (lease expired)'
                THEN 'lost'
            WHEN NEW.status = 'failed' THEN 'failed' ELSE 'retried' END,
        error = CASE WHEN NEW.status = 'success' OR NEW.attempts < OLD.attempts THEN NULL
            ELSE NEW.error_message END
    WHERE task_id = NEW.id AND dispatch_no = OLD.dispatch_no AND finished_at IS NULL
"""
EVENT = """
    INSERT INTO task_events (task_id, tenant, status, priority, at)
    VALUES (NEW.id, NEW.tenant, NEW.status, NEW.priority, NEW.updated_at)
"""

PG_FUNCTIONS = {
    "insert": """
        INSERT INTO task_events (task_id, tenant, status, priority, at)
        SELECT id, tenant, status, priority, created_at FROM new_rows ORDER BY id;
    """,
    "update": f"""
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            IF NEW.status = 'running' THEN {OPEN_ATTEMPT}; END IF;
            IF OLD.status = 'running' THEN {CLOSE_ATTEMPT}; END IF;
        END IF;
        {EVENT};
    """,
    "delete": """
        DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM old_rows);
        DELETE FROM task_events WHERE task_id IN (SELECT id FROM old_rows);
    """,
    "truncate": "TRUNCATE task_attempts, task_events;",
}
MOVED = "OLD.status IS DISTINCT FROM NEW.status OR OLD.priority IS DISTINCT FROM NEW.priority"
PG_TRIGGERS = {
    "insert": "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "update": f"AFTER UPDATE OF status, priority ON tasks FOR EACH ROW WHEN ({MOVED})",
    "delete": "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
    "truncate": "AFTER TRUNCATE ON tasks FOR EACH STATEMENT",
}

SQLITE_TRIGGERS = {
    "insert": f"AFTER INSERT ON tasks BEGIN {EVENT}; END",
    "open": "AFTER UPDATE OF status ON tasks "
    f"WHEN NEW.status = 'running' AND OLD.status IS NOT 'running' BEGIN {OPEN_ATTEMPT}; END",
    "close": "AFTER UPDATE OF status ON tasks "
    f"WHEN OLD.status = 'running' AND NEW.status IS NOT 'running' BEGIN {CLOSE_ATTEMPT}; END",
    "update": "AFTER UPDATE OF status, priority ON tasks "
    "WHEN OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority "
    f"BEGIN {EVENT}; END",
    "delete": "AFTER DELETE ON tasks BEGIN "
    "DELETE FROM task_attempts WHERE task_id = OLD.id; "
    "DELETE FROM task_events WHERE task_id = OLD.id; END",
}


def _id_column() -> sa.Column[int]:
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "task_attempts",
        _id_column(),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("dispatch_no", sa.Integer(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_task_attempts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_attempts_task_id", "task_attempts", ["task_id"])
    op.create_index("ix_task_attempts_started_at", "task_attempts", ["started_at"])
    op.create_table(
        "task_events",
        _id_column(),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_events_task_id_id", "task_events", ["task_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        for verb, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION tasks_history_{verb}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER tasks_history_{verb} {PG_TRIGGERS[verb]} "
                f"EXECUTE FUNCTION tasks_history_{verb}()"
            )
    else:
        for name, trigger in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER tasks_history_{name} {trigger}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for verb in PG_FUNCTIONS:
            op.execute(f"DROP TRIGGER tasks_history_{verb} ON tasks")
            op.execute(f"DROP FUNCTION tasks_history_{verb}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER tasks_history_{name}")
    op.drop_table("task_events")
    op.drop_table("task_attempts")

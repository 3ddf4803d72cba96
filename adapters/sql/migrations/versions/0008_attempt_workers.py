"""Each attempt names its worker: a `worker` column on tasks, set by the claim, and on
task_attempts, copied from it by the trigger that opens the attempt.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

The claim (one conditional UPDATE, adapters/sql/repository.py) writes the worker's name into the
task's row; the trigger of revision 0007 that opens an attempt copies it, in the same statement,
so the worker process never writes history itself. The column stays after the attempt ends: it
names who ran the task last. Attempts recorded before this revision have no worker (null).

Both columns are nullable with no default: adding them changes no stored row (on PostgreSQL it is
a change of the catalogue only, instant on a table of any size). Only the trigger's attempt
insert changes; the rest of 0007's trigger text is reused as it is.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ATTEMPT = """
    INSERT INTO task_attempts
        (task_id, attempt, dispatch_no, priority, scheduled_for, started_at, worker)
    VALUES (NEW.id, NEW.attempts, NEW.dispatch_no, NEW.priority, OLD.scheduled_for,
            NEW.started_at, NEW.worker)
"""


def _revision_0007() -> ModuleType:
    """Revision 0007, whose trigger text this one edits (a revision never imports the code)."""
    path = Path(__file__).with_name("0007_task_attempts_and_events.py")
    spec = importlib.util.spec_from_file_location("taskman_revision_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _install(open_attempt: str) -> None:
    """Re-create the trigger that opens attempts with `open_attempt` as its insert."""
    v7 = _revision_0007()
    assert (
        v7.OPEN_ATTEMPT in v7.PG_FUNCTIONS["update"]
        and v7.OPEN_ATTEMPT in v7.SQLITE_TRIGGERS["open"]
    )
    if op.get_bind().dialect.name == "postgresql":
        body = v7.PG_FUNCTIONS["update"].replace(v7.OPEN_ATTEMPT, open_attempt)
        op.execute(
            "CREATE OR REPLACE FUNCTION tasks_history_update() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$"
        )
    else:
        trigger = v7.SQLITE_TRIGGERS["open"].replace(v7.OPEN_ATTEMPT, open_attempt)
        op.execute("DROP TRIGGER tasks_history_open")
        op.execute(f"CREATE TRIGGER tasks_history_open {trigger}")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("worker", sa.String(255)))
    op.add_column("task_attempts", sa.Column("worker", sa.String(255)))
    _install(OPEN_ATTEMPT)


def downgrade() -> None:
    _install(_revision_0007().OPEN_ATTEMPT)  # before the columns go: SQLite checks its triggers
    op.drop_column("task_attempts", "worker")
    op.drop_column("tasks", "worker")

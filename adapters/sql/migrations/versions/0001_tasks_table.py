"""The tasks table.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

Types are spelled out here rather than imported from adapters.sql.types, so this revision keeps
building the same table whatever those classes become.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _exact_integer() -> sa.types.TypeEngine[Any]:
    return sa.Numeric(20, 0).with_variant(sa.Text(), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return postgresql.JSONB().with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
            primary_key=True,
        ),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("a", sa.BigInteger()),
        sa.Column("b", sa.BigInteger()),
        sa.Column("result", _exact_integer()),
        sa.Column("pairs", _json()),
        sa.Column("results", _json()),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("started_at", _timestamp()),
        sa.Column("finished_at", _timestamp()),
        sa.Column("scheduled_for", _timestamp(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text()),
        sa.Column("dispatch_no", sa.Integer(), nullable=False),
        sa.Column("published_at", _timestamp()),
        sa.Column("lease_expires_at", _timestamp()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.CheckConstraint("type IN ('single', 'batch')", name=op.f("ck_tasks_type")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'success', 'failed', 'cancelled')",
            name=op.f("ck_tasks_status"),
        ),
        sa.CheckConstraint("priority IN (1, 2, 3)", name=op.f("ck_tasks_priority")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("tasks")

"""Tenants own tasks; API keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every task gets its tenant (those made before are the built-in tenant's) and its pair count
(batches counted from their pairs), with the indexes of a tenant's list and of its queued load.
idempotency_keys needs no change: its key is already (scope, key), and the scope is now the
tenant. api_keys keeps each key's lookup prefix and keyed hash, never the key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = "status = 'queued'"


def upgrade() -> None:
    op.add_column(
        "tasks",
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
    )
    op.add_column(
        "tasks", sa.Column("pair_count", sa.Integer(), nullable=False, server_default="1")
    )
    length = (
        "jsonb_array_length" if op.get_bind().dialect.name == "postgresql" else "json_array_length"
    )
    # `length` is one of the two function names above, never input.
    op.execute(f"UPDATE tasks SET pair_count = {length}(pairs) WHERE type = 'batch'")  # nosec B608
    op.create_index("ix_tasks_tenant_id", "tasks", ["tenant", "id"])
    op.create_index(
        "ix_tasks_tenant_queued",
        "tasks",
        ["tenant", "type", "pair_count"],
        postgresql_where=sa.text(QUEUED),
        sqlite_where=sa.text(QUEUED),
    )
    op.create_table(
        "api_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(),
            nullable=False,
        ),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_tasks_tenant_queued", table_name="tasks")
    op.drop_index("ix_tasks_tenant_id", table_name="tasks")
    # SQLite (3.35+) drops a column in place once no index names it.
    op.drop_column("tasks", "pair_count")
    op.drop_column("tasks", "tenant")

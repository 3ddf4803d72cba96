"""Tenants own tasks; API keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every task gets its tenant (those made before are the built-in tenant's) and its pair count
(batches counted from their pairs), with the indexes of a tenant's list and of its queued load.
idempotency_keys needs no change: its key is already (scope, key), and the scope is now the
tenant. api_keys keeps each key's lookup prefix and keyed hash, never the key.

The exact counts (revision 0005) gain the tenant as a fourth key, so one tenant's list total
is a sum over its own few count rows too, never a count of its tasks: the counting triggers are
redefined with the tenant, and the counts kept so far (all the built-in tenant's) take it too.
A task's tenant never changes, so the update trigger still fires on status, priority and type.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = "status = 'queued'"


def _pg_functions(key: str) -> dict[str, str]:
    """Revision 0005's counting functions, with `key` the counted columns (one of the two
    constants below, never input)."""
    insert = f"INSERT INTO task_counts ({key}, n)"
    old, new = _each("OLD", key), _each("NEW", key)
    return {
        "insert": f"{insert} SELECT {key}, count(*) FROM new_rows GROUP BY {key}",  # nosec B608
        "update": f"{insert} VALUES ({old}, -1), ({new}, 1)",
        "delete": f"{insert} SELECT {key}, -count(*) FROM old_rows GROUP BY {key}",  # nosec B608
    }


def _sqlite_triggers(key: str) -> dict[str, str]:
    """Revision 0005's SQLite triggers, with `key` the counted columns."""
    insert = f"INSERT INTO task_counts ({key}, n) VALUES"
    return {
        "insert": f"AFTER INSERT ON tasks BEGIN {insert} ({_each('NEW', key)}, 1); END",
        "update": "AFTER UPDATE OF status, priority, type ON tasks "
        "WHEN OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority "
        f"OR OLD.type IS NOT NEW.type BEGIN {insert} ({_each('OLD', key)}, -1), "
        f"({_each('NEW', key)}, 1); END",
        "delete": f"AFTER DELETE ON tasks BEGIN {insert} ({_each('OLD', key)}, -1); END",
    }


def _each(row: str, key: str) -> str:
    return ", ".join(f"{row}.{column.strip()}" for column in key.split(","))


def _count_by(key: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for verb, body in _pg_functions(key).items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION tasks_count_{verb}() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$"
            )
        return
    for verb, trigger in _sqlite_triggers(key).items():
        op.execute(f"DROP TRIGGER tasks_count_{verb}")
        op.execute(f"CREATE TRIGGER tasks_count_{verb} {trigger}")


WITHOUT_TENANT = "status, priority, type"
WITH_TENANT = "tenant, status, priority, type"


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
    op.add_column(
        "task_counts",
        sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
    )
    _count_by(WITH_TENANT)
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
    _count_by(WITHOUT_TENANT)
    op.drop_column("task_counts", "tenant")  # the rows left still sum per (status, priority, type)
    op.drop_index("ix_tasks_tenant_id", table_name="tasks")
    # SQLite (3.35+) drops a column in place once no index names it.
    op.drop_column("tasks", "pair_count")
    op.drop_column("tasks", "tenant")

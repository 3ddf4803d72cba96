"""The due-task index leads with the priority.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-10

The dispatcher publishes due tasks highest priority first (ORDER BY priority, scheduled_for):
with the index on (priority, scheduled_for) a round walks the due rows in that order and stops
after its batch, instead of reading every due row to sort them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING_PUBLICATION = "status = 'queued' AND published_at IS NULL"


def _due_index(columns: list[str]) -> None:
    op.create_index(
        "ix_tasks_due",
        "tasks",
        columns,
        postgresql_where=sa.text(AWAITING_PUBLICATION),
        sqlite_where=sa.text(AWAITING_PUBLICATION),
    )


def upgrade() -> None:
    op.drop_index("ix_tasks_due", table_name="tasks")
    _due_index(["priority", "scheduled_for"])


def downgrade() -> None:
    op.drop_index("ix_tasks_due", table_name="tasks")
    _due_index(["scheduled_for"])

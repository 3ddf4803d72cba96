"""Indexes for the list filters and the dispatcher.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-09

The list is newest first: (filter column, id) lets a filtered page walk the matching ids
backwards and stop after the page. The dispatcher's three queries each get a partial index that
holds only the rows that can answer them, so it stays small however many tasks are finished.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING_PUBLICATION = "status = 'queued' AND published_at IS NULL"
PUBLISHED_AND_QUEUED = "status = 'queued' AND published_at IS NOT NULL"
RUNNING = "status = 'running'"

PARTIAL_INDEXES = {
    "ix_tasks_due": (["scheduled_for"], AWAITING_PUBLICATION),
    "ix_tasks_published_queued": (["priority", "published_at"], PUBLISHED_AND_QUEUED),
    "ix_tasks_lease": (["lease_expires_at"], RUNNING),
}
LIST_INDEXES = {
    "ix_tasks_status_id": ["status", "id"],
    "ix_tasks_type_id": ["type", "id"],
    "ix_tasks_priority_id": ["priority", "id"],
}


def upgrade() -> None:
    for name, columns in LIST_INDEXES.items():
        op.create_index(name, "tasks", columns)
    for name, (columns, predicate) in PARTIAL_INDEXES.items():
        op.create_index(
            name,
            "tasks",
            columns,
            postgresql_where=sa.text(predicate),
            sqlite_where=sa.text(predicate),
        )


def downgrade() -> None:
    for name in [*PARTIAL_INDEXES, *LIST_INDEXES]:
        op.drop_index(name, table_name="tasks")

"""The schema the code expects; the Alembic migrations build exactly this (a test checks it)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ColumnClause,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    literal_column,
)

from adapters.sql.types import ExactInteger, JsonDocument, UtcDateTime
from domain.access import DEFAULT_TENANT

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tasks = Table(
    "tasks",
    metadata,
    # BIGINT: at a thousand tasks a second a 32-bit id runs out within a month. SQLite needs the
    # exact type name INTEGER for its rowid alias, and AUTOINCREMENT so ids are never reused.
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("type", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", SmallInteger(), nullable=False),
    Column("a", BigInteger()),
    Column("b", BigInteger()),
    Column("result", ExactInteger()),
    Column("pairs", JsonDocument()),
    Column("results", JsonDocument()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("scheduled_for", UtcDateTime(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("max_attempts", Integer(), nullable=False),
    Column("error_message", Text()),
    Column("dispatch_no", Integer(), nullable=False),
    Column("published_at", UtcDateTime()),
    Column("lease_expires_at", UtcDateTime()),
    Column("version", Integer(), nullable=False),
    # The owner (revision 0006): tasks made before tenants existed are the built-in tenant's.
    Column("tenant", String(64), nullable=False, server_default=DEFAULT_TENANT),
    # How many pairs it adds (1 for a single task), so a tenant's quota of queued batch pairs
    # is summed from the index below without reading the pairs themselves.
    Column("pair_count", Integer(), nullable=False, server_default="1"),
    # The worker that claimed the latest attempt (revision 0008), e.g. `high@host:4242`; set by
    # the claim only, copied by the trigger into that attempt's row.
    Column("worker", String(255)),
    CheckConstraint("type IN ('single', 'batch')", name="type"),
    CheckConstraint(
        "status IN ('queued', 'running', 'success', 'failed', 'cancelled')", name="status"
    ),
    CheckConstraint("priority IN (1, 2, 3)", name="priority"),
    sqlite_autoincrement=True,
)

# The status literals are written into the SQL, not bound: PostgreSQL can use a partial index
# only when it can prove the query's predicate implies the index's, and a bound parameter
# proves nothing once psycopg prepares the statement and the server switches to a generic plan.
QUEUED: ColumnClause[str] = literal_column("'queued'")
RUNNING: ColumnClause[str] = literal_column("'running'")


AWAITING_PUBLICATION = and_(tasks.c.status == QUEUED, tasks.c.published_at.is_(None))
PUBLISHED_AND_QUEUED = and_(tasks.c.status == QUEUED, tasks.c.published_at.is_not(None))
RUNNING_TASK = tasks.c.status == RUNNING

# The list is newest first (ORDER BY id DESC): with no filter the primary key serves the page;
# with a filter, (filter column, id) lets PostgreSQL walk the matching ids backwards and stop
# after the page. Combined filters use one of them and check the rest on the few rows walked.
Index("ix_tasks_status_id", tasks.c.status, tasks.c.id)
Index("ix_tasks_type_id", tasks.c.type, tasks.c.id)
Index("ix_tasks_priority_id", tasks.c.priority, tasks.c.id)
# Lists by creation window (revision 0009): one probe per end of the window finds the ids it
# lies between (ids grow with creation times); the page itself then walks the indexes above.
Index("ix_tasks_created_at", tasks.c.created_at)
# A tenant's list (every list but an admin's): its ids newest first, as the primary key serves
# the unfiltered one.
Index("ix_tasks_tenant_id", tasks.c.tenant, tasks.c.id)
# A tenant's queued load, asked on every create while a quota is set: only queued rows, and the
# columns the sum needs, so it is answered from the index alone.
QUEUED_TASK = tasks.c.status == QUEUED
Index(
    "ix_tasks_tenant_queued",
    tasks.c.tenant,
    tasks.c.type,
    tasks.c.pair_count,
    postgresql_where=QUEUED_TASK,
    sqlite_where=QUEUED_TASK,
)

# The dispatcher's three questions, each on a partial index that holds only the rows that can
# answer it: small, and untouched by the bulk of finished tasks. Due tasks are published highest
# priority first: (priority, scheduled_for) hands them over in that order, so a round reads only
# as many rows as it publishes (revision 0003; 0002 had scheduled_for alone).
Index(
    "ix_tasks_due",
    tasks.c.priority,
    tasks.c.scheduled_for,
    postgresql_where=AWAITING_PUBLICATION,
    sqlite_where=AWAITING_PUBLICATION,
)
Index(
    "ix_tasks_published_queued",
    tasks.c.priority,
    tasks.c.published_at,
    postgresql_where=PUBLISHED_AND_QUEUED,
    sqlite_where=PUBLISHED_AND_QUEUED,
)
Index(
    "ix_tasks_lease",
    tasks.c.lease_expires_at,
    postgresql_where=RUNNING_TASK,
    sqlite_where=RUNNING_TASK,
)

# Retention (PruneFinishedTasks) walks each finished status oldest finish first and stops after its
# batch. Partial: the few queued and running rows stay out of it (revision 0005).
FINISHED_TASK = tasks.c.status.in_(
    [literal_column("'success'"), literal_column("'failed'"), literal_column("'cancelled'")]
)
Index(
    "ix_tasks_finished",
    tasks.c.status,
    tasks.c.finished_at,
    postgresql_where=FINISHED_TASK,
    sqlite_where=FINISHED_TASK,
)

# Exact counts per (tenant, status, priority, type) as signed deltas, appended by triggers on
# tasks in the transaction of every statement that changes them (revisions 0005 and 0006 have the
# triggers and why): a count is the sum of this small table's rows, never a scan of tasks. No
# key: rows are only appended, summed, and folded (SqlTaskRepository.fold_counts) into one row
# per key.
task_counts = Table(
    "task_counts",
    metadata,
    Column("tenant", String(64), nullable=False, server_default=DEFAULT_TENANT),
    Column("status", String(16), nullable=False),
    Column("priority", SmallInteger(), nullable=False),
    Column("type", String(8), nullable=False),
    Column("n", BigInteger(), nullable=False),
)

# The first response to each keyed create (Idempotency-Key), written in the transaction that
# stores its task. Unique per (scope, key): the scope is the tenant of the key that created it.
# `expires_at` serves the pruning and the expiry check.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("task_id", BigInteger(), nullable=False),
    Column("status_code", SmallInteger(), nullable=False),
    Column("body", Text(), nullable=False),
    Column("location", Text()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_idempotency_keys_expires_at", idempotency_keys.c.expires_at)

# API keys (revision 0006): never the key, only its lookup prefix and HMAC-SHA256(pepper, key).
# The prefix is unique, so authenticating a request is one read of this index.
api_keys = Table(
    "api_keys",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("tenant", String(64), nullable=False),
    # Comma-separated, e.g. "tasks:read,tasks:write".
    Column("scopes", String(128), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    sqlite_autoincrement=True,
)

# Each task's attempts and the log of its moves (revision 0007), written by triggers on tasks:
# a claim opens an attempt and the move out of running closes it; every create and every change
# of status or priority appends an event, whose id is the Server-Sent Events id. Both are
# deleted with their task; events also by age. Lateness is started_at - scheduled_for.
task_attempts = Table(
    "task_attempts",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("task_id", BigInteger(), nullable=False),
    Column("attempt", Integer(), nullable=False),
    Column("dispatch_no", Integer(), nullable=False),
    Column("priority", SmallInteger(), nullable=False),
    Column("scheduled_for", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("outcome", String(16)),
    Column("error", Text()),
    # Who ran it (revision 0008): the claim's worker; null for attempts recorded before it.
    Column("worker", String(255)),
    sqlite_autoincrement=True,
)
Index("ix_task_attempts_task_id", task_attempts.c.task_id)
# The console's recent throughput and start lateness: the attempts started in the last minutes.
Index("ix_task_attempts_started_at", task_attempts.c.started_at)

task_events = Table(
    "task_events",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(),
        primary_key=True,
    ),
    Column("task_id", BigInteger(), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", SmallInteger(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,
)
# One task's stream: its events in order.
Index("ix_task_events_task_id_id", task_events.c.task_id, task_events.c.id)

"""IdempotencyKeys on SQLAlchemy Core: one statement per call, on the unit of work's connection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
    Table,
    bindparam,
    delete,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from adapters.sql.errors import store_errors
from adapters.sql.tables import idempotency_keys as keys
from application.ports import IdempotencyKeys, IdempotencyRecord, StoredResponse

_GET = select(keys).where(
    keys.c.scope == bindparam("scope"),
    keys.c.key == bindparam("key"),
    keys.c.expires_at > bindparam("now", type_=keys.c.expires_at.type),
)
_INSERTS: dict[str, Callable[[Table], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}
_KEY_COLUMNS = {"scope", "key"}


def _row(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "scope": record.scope,
        "key": record.key,
        "fingerprint": record.fingerprint,
        "task_id": record.task_id,
        "status_code": record.response.status,
        "body": record.response.body,
        "location": record.response.location,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    }


class SqlIdempotencyKeys(IdempotencyKeys):
    def __init__(self, connection: Connection, *, read_only: bool = False) -> None:
        self._connection = connection
        self._read_only = read_only
        self.wrote = False

    def _execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        with store_errors():
            return self._connection.execute(statement, parameters)

    def _will_write(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work does not write")
        self.wrote = True

    def get(self, scope: str, key: str, now: datetime) -> IdempotencyRecord | None:
        params = {"scope": scope, "key": key, "now": now}
        row = self._execute(_GET, params).mappings().first()
        if row is None:
            return None
        return IdempotencyRecord(
            scope=row["scope"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            task_id=row["task_id"],
            response=StoredResponse(
                status=row["status_code"], body=row["body"], location=row["location"]
            ),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    def add_all(self, records: Sequence[IdempotencyRecord], now: datetime) -> set[tuple[str, str]]:
        if not records:
            return set()
        if len({(r.scope, r.key) for r in records}) != len(records):
            raise ValueError("two records share a (scope, key)")
        self._will_write()
        # INSERT ... ON CONFLICT: on PostgreSQL a key another transaction is inserting makes
        # this wait for its outcome, so two API processes never both keep a task for one key.
        # An expired record still in the table (not yet pruned) is overwritten.
        statement = _INSERTS[self._connection.dialect.name](keys).values([_row(r) for r in records])
        replace = {c.name: statement.excluded[c.name] for c in keys.c if c.name not in _KEY_COLUMNS}
        upsert = statement.on_conflict_do_update(
            index_elements=[keys.c.scope, keys.c.key],
            set_=replace,
            where=keys.c.expires_at <= now,
        ).returning(keys.c.scope, keys.c.key)
        return {(row.scope, row.key) for row in self._execute(upsert)}

    def prune(self, now: datetime, limit: int) -> int:
        self._will_write()
        expired = (
            select(keys.c.scope, keys.c.key)
            .where(keys.c.expires_at <= now)
            .order_by(keys.c.expires_at)
            .limit(limit)
            # Several dispatchers prune side by side without waiting on each other's rows.
            .with_for_update(skip_locked=True)
        )
        statement = delete(keys).where(tuple_(keys.c.scope, keys.c.key).in_(expired))
        return self._execute(statement).rowcount

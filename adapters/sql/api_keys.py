"""ApiKeys on SQLAlchemy Core: one statement per call, on the unit of work's connection."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from adapters.sql.tables import api_keys
from application.ports import ApiKeys
from domain.access import ApiKey, parse_scopes

_BY_PREFIX = select(api_keys).where(api_keys.c.prefix == bindparam("prefix"))
_INSERT = insert(api_keys).returning(api_keys.c.id)
_REVOKE = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"), api_keys.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now", type_=api_keys.c.revoked_at.type))
)


def _key(row: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant=row["tenant"],
        scopes=parse_scopes(row["scopes"]),
        prefix=row["prefix"],
        hash=row["key_hash"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class SqlApiKeys(ApiKeys):
    def __init__(self, connection: Connection, *, read_only: bool = False) -> None:
        self._connection = connection
        self._read_only = read_only
        self.wrote = False

    def _will_write(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work does not write")
        self.wrote = True

    def add(self, key: ApiKey) -> None:
        self._will_write()
        row = {
            "tenant": key.tenant,
            "scopes": ",".join(sorted(scope.value for scope in key.scopes)),
            "prefix": key.prefix,
            "key_hash": key.hash,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        key.id = self._connection.execute(_INSERT, row).scalar_one()

    def by_prefix(self, prefix: str) -> ApiKey | None:
        row = self._connection.execute(_BY_PREFIX, {"prefix": prefix}).mappings().first()
        return _key(row) if row is not None else None

    def all(self) -> list[ApiKey]:
        rows = self._connection.execute(select(api_keys).order_by(api_keys.c.id)).mappings()
        return [_key(row) for row in rows]

    def revoke(self, key_id: int, now: datetime) -> ApiKey | None:
        self._will_write()
        self._connection.execute(_REVOKE, {"key_id": key_id, "now": now})
        query = select(api_keys).where(api_keys.c.id == key_id)
        row = self._connection.execute(query).mappings().first()
        return _key(row) if row is not None else None

"""UnitOfWork on one pooled connection per `with` block."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, text

from adapters.sql.api_keys import SqlApiKeys
from adapters.sql.engine import READ_ONLY
from adapters.sql.errors import store_errors
from adapters.sql.history import SqlTaskHistory
from adapters.sql.idempotency import SqlIdempotencyKeys
from adapters.sql.repository import SqlTaskRepository
from application.ports import UnitOfWork


class SqlUnitOfWork(UnitOfWork):
    """Each `with uow:` checks a connection out of the engine's pool and returns it on exit.

    The transaction begins with the first statement (so a block that reads nothing costs no
    round trip) and is rolled back on exit unless `commit()` was called; a statement after a
    commit starts a new transaction, which the same rule covers. A transaction that only read
    ends with COMMIT, which for it means the same.

    `read_only=True` is for use cases that only read (get, list, health): its repository
    refuses writes, and on SQLite its transactions begin DEFERRED instead of IMMEDIATE, so they
    read a snapshot at once instead of queueing for the write lock behind every writer.

    After `one_write()`, the next block's connection is in autocommit on PostgreSQL: its one
    statement is its own transaction, with no BEGIN and no COMMIT round trip before and after
    it. SQLite keeps its transaction (its BEGIN and COMMIT cost no round trip).

    The driver's failures reach callers as the port's: StoreUnavailable, or StoreBusy when a
    bounded wait ran out (adapters.sql.errors)."""

    tasks: SqlTaskRepository
    idempotency_keys: SqlIdempotencyKeys
    api_keys: SqlApiKeys
    history: SqlTaskHistory

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._connection: Connection | None = None
        self._one_write = False

    def one_write(self) -> Self:
        self._one_write = True
        return self

    def __enter__(self) -> Self:
        one_write, self._one_write = self._one_write, False
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        self._connection = self._connect()
        if one_write and self._engine.dialect.name == "postgresql":
            # For this checkout only: the pool resets the connection when it comes back.
            self._connection.execution_options(isolation_level="AUTOCOMMIT")
        self.tasks = SqlTaskRepository(
            self._connection, read_only=self._read_only, one_statement=one_write
        )
        self.idempotency_keys = SqlIdempotencyKeys(self._connection, read_only=self._read_only)
        self.api_keys = SqlApiKeys(self._connection, read_only=self._read_only)
        self.history = SqlTaskHistory(self._connection, read_only=self._read_only)
        return self

    def _connect(self, *, read_only: bool | None = None) -> Connection:
        with store_errors():
            connection = self._engine.connect()
        if self._read_only if read_only is None else read_only:
            connection.execution_options(**{READ_ONLY: True})  # this checkout only
        return connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with store_errors():
            try:
                if exc_type is None and not self._wrote() and connection.in_transaction():
                    # Nothing to undo, so COMMIT ends it just as ROLLBACK would; but psycopg
                    # answers every ROLLBACK by dropping its prepared statements (one more round
                    # trip, DEALLOCATE ALL, and the next statements are parsed and planned again).
                    connection.commit()
            finally:
                # Back to the pool even if the COMMIT failed, rolling back whatever was not
                # committed (if even that rollback fails, SQLAlchemy still releases the
                # connection).
                connection.close()

    def commit(self) -> None:
        if self._connection is None:
            raise RuntimeError("commit() outside `with uow:`")
        with store_errors():
            self._connection.commit()
        self.tasks.wrote = self.idempotency_keys.wrote = self.api_keys.wrote = False
        self.history.wrote = False

    def _wrote(self) -> bool:
        return (
            self.tasks.wrote
            or self.idempotency_keys.wrote
            or self.api_keys.wrote
            or self.history.wrote
        )

    def ping(self) -> None:
        with self._connect(read_only=True) as connection, store_errors():
            connection.execute(text("SELECT 1"))

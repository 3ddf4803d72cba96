"""UnitOfWork on one pooled connection per `with` block."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, text

from adapters.sql.repository import SqlTaskRepository
from application.ports import UnitOfWork


class SqlUnitOfWork(UnitOfWork):
    """Each `with uow:` checks a connection out of the engine's pool and returns it on exit.

    The transaction begins with the first statement (so a block that reads nothing costs no
    round trip) and is rolled back on exit unless `commit()` was called; a statement after a
    commit starts a new transaction, which the same rule covers. A transaction that only read
    ends with COMMIT, which for it means the same."""

    tasks: SqlTaskRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        self._connection = self._engine.connect()
        self.tasks = SqlTaskRepository(self._connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if exc_type is None and not self.tasks.wrote and connection.in_transaction():
            # Nothing to undo, so COMMIT ends it just as ROLLBACK would; but psycopg answers every
            # ROLLBACK by dropping its prepared statements (one more round trip, DEALLOCATE ALL,
            # and the next statements are parsed and planned again).
            connection.commit()
        connection.close()  # rolls back whatever was not committed

    def commit(self) -> None:
        if self._connection is None:
            raise RuntimeError("commit() outside `with uow:`")
        self._connection.commit()
        self.tasks.wrote = False

    def ping(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

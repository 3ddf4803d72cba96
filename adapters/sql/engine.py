"""Engines for the two supported stores: PostgreSQL through psycopg 3, and SQLite files."""

from __future__ import annotations

import select
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Execution option of a connection whose transactions only read: on SQLite they begin DEFERRED.
READ_ONLY = "taskman_read_only"


# As many connections as the API's threadpool runs requests at once (anyio's default limit):
# with fewer, every request beyond the pool opened a connection and closed it on return, a
# PostgreSQL backend forked per request. The pool opens connections only when they are needed,
# so a worker process, which runs one attempt at a time, still holds a single one.
DEFAULT_POOL_SIZE = 40


# A transaction left open by a client that stopped talking keeps its locks: PostgreSQL ends such
# a session after this long. taskman's own transactions idle only between their statements, or
# while a dispatcher round publishes (bounded by the broker's timeouts, seconds at most).
IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Waits:
    """The longest waits of a statement and of a checkout, in seconds; None: unbounded.

    - `lock`: a PostgreSQL statement waiting on a row or table lock (`lock_timeout`); then it
      fails with SQLSTATE 55P03 (lock_not_available), wrapped in sqlalchemy's OperationalError.
    - `statement`: a PostgreSQL statement, lock waits included (`statement_timeout`); then
      SQLSTATE 57014 (query_canceled), likewise wrapped.
    - `pool`: a checkout from the engine's pool when every connection is in use
      (`pool_timeout`); then sqlalchemy.exc.TimeoutError.

    SQLite keeps its busy timeout (SQLITE_BUSY_TIMEOUT_MS): its one write lock is taken in turn
    by every writer of every process, a wait that is normal there, not a sign of a stuck lock."""

    lock: float | None = None
    statement: float | None = None
    pool: float | None = None


UNBOUNDED = Waits()


def create_engine_for(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = 10,
    waits: Waits = UNBOUNDED,
) -> Engine:
    """An engine for `postgresql://`, `postgresql+psycopg://` or `sqlite:///path` URLs, whose
    waits are bounded by `waits` (see Waits for what each bound raises)."""
    parsed = normalised_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgresql(parsed, pool_size, max_overflow, waits)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(parsed, waits)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)}")


def _pool_timeout(waits: Waits) -> dict[str, float]:
    return {} if waits.pool is None else {"pool_timeout": waits.pool}


def _session_options(waits: Waits) -> str:
    """libpq `options`: server settings of every session, set as it starts (no round trip)."""
    settings = {
        # Every timestamp comes back in UTC without a per-value conversion.
        "timezone": "UTC",
        "idle_in_transaction_session_timeout": _milliseconds(IDLE_IN_TRANSACTION_TIMEOUT_SECONDS),
    }
    if waits.lock is not None:
        settings["lock_timeout"] = _milliseconds(waits.lock)
    if waits.statement is not None:
        settings["statement_timeout"] = _milliseconds(waits.statement)
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def _milliseconds(seconds: float) -> str:
    # At least 1: PostgreSQL reads 0 as "no timeout".
    return str(max(1, round(seconds * 1000)))


def normalised_url(url: str) -> URL:
    """Plain `postgresql://` means psycopg 3 here, not SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def _postgresql(url: URL, pool_size: int, max_overflow: int, waits: Waits) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={"options": _session_options(waits)},
        **_pool_timeout(waits),
    )
    # A PostgreSQL restart leaves every pooled connection dead. SQLAlchemy invalidates the
    # whole pool on the first disconnect error, but that first statement still fails, and for
    # a worker that is a failed attempt: so each checkout checks its connection first. Not
    # with pool_pre_ping's SELECT 1, a round trip per checkout (a worker checks out twice per
    # task, for one statement each time), but by looking at the socket.
    event.listen(engine, "checkout", _refuse_connection_ended_by_server)
    return engine


def _refuse_connection_ended_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """An idle pooled connection has nothing to read. One the server ended (a restart, an
    administrator's pg_terminate_backend) has its FATAL message or the end of the stream
    waiting on the socket: the pool then replaces it, up to three times, before anyone uses it.
    A false alarm (say, a parameter change the server announced) only costs a reconnection."""
    if dbapi_connection.closed or _readable(dbapi_connection.fileno()):
        raise exc.DisconnectionError("the server ended this pooled connection")


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _sqlite(url: URL, waits: Waits) -> Engine:
    in_file = bool(url.database) and url.database != ":memory:"
    if in_file:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        # Only a file has a queue pool; an in-memory database has one connection per thread.
        **(_pool_timeout(waits) if in_file else {}),
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module, which begins a transaction only at
    # the first write and so lets a read-then-write transaction see a stale snapshot.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer nor the writer the readers, so the API, the
        # workers and the dispatcher can share the file.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _begin_immediate(connection: Any) -> None:
    # A transaction here may write after reading (claim, dispatch, any move). A deferred
    # transaction that upgrades to writing after another process committed fails at once with
    # SQLITE_BUSY, whatever the busy timeout; BEGIN IMMEDIATE takes the write lock up front and
    # waits its turn instead. SQLite has one writer at a time anyway. A connection marked
    # READ_ONLY never writes: its deferred BEGIN reads a WAL snapshot without waiting for anyone.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

"""The driver's failures as the port's errors, so that no caller imports SQLAlchemy or psycopg.

A bounded wait that ran out (Waits in adapters.sql.engine) becomes StoreBusy; a store that
cannot be reached, or dropped the connection, becomes StoreUnavailable. Anything else (a
constraint violated, a query the server rejects) is a bug of ours and is raised unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from application.ports import StoreBusy, StoreUnavailable

# What may need translating: every error the driver raises comes wrapped in a DBAPIError, and
# a pool checkout that waited too long is SQLAlchemy's own TimeoutError.
DRIVER_ERRORS = (exc.DBAPIError, exc.TimeoutError)

# SQLSTATEs of a bounded wait that ran out: lock_not_available (lock_timeout, or NOWAIT) and
# query_canceled (statement_timeout).
_TIMED_OUT_SQLSTATES = frozenset({"55P03", "57014"})


def translate(error: Exception) -> StoreUnavailable | None:
    """StoreBusy or StoreUnavailable for a driver's error, or None if it means neither."""
    if isinstance(error, exc.TimeoutError):
        return StoreBusy(f"no pooled connection came free in time: {error}")
    if not isinstance(error, exc.DBAPIError):
        return None
    original = error.orig
    if getattr(original, "sqlstate", None) in _TIMED_OUT_SQLSTATES:
        return StoreBusy(f"a lock or statement wait ran out: {original}")
    if isinstance(error, exc.OperationalError) and "database is locked" in str(original):
        # SQLite's busy timeout ran out on its write lock.
        return StoreBusy(f"the database's write lock did not come free in time: {original}")
    if isinstance(error, exc.OperationalError | exc.InterfaceError) or (
        error.connection_invalidated
    ):
        return StoreUnavailable(f"the task store is unreachable: {original}")
    return None


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise the port's error in place of the driver's (see translate)."""
    try:
        yield
    except DRIVER_ERRORS as error:
        translated = translate(error)
        if translated is None:
            raise
        raise translated from error

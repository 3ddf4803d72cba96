"""`python -m entrypoints.migrate`: bring the configured database to the newest schema.

It waits for the database first: under compose, `migrate` may start while PostgreSQL still runs
its first-boot initialisation or restarts after it, and a migration that gave up at once would
leave every other service waiting on it forever. A database that answers but cannot be used
(missing, wrong credentials) is not waited for. Either failure is reported in one line on
stderr, naming the database without its password, with exit status 1: the reason is what the
operator needs, not the driver's traceback."""

from __future__ import annotations

import itertools
import logging
import sys
import time

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from adapters.sql.engine import create_engine_for, normalised_url
from adapters.sql.migrations import upgrade_to_head
from entrypoints.settings import Settings

RETRY_INTERVAL_SECONDS = 0.5
# A host that drops packets (rather than refusing them) would otherwise hold one try for the
# operating system's TCP timeout, minutes, past the wait's bound.
CONNECT_TIMEOUT_SECONDS = 5

# The server answered, and waiting will not change its answer: the database does not exist, or
# the password or the role is refused. psycopg gives no SQLSTATE for a refused connection, so the
# server's (English) message is read; anything else, "the database system is starting up"
# included, is waited for.
_FINAL = ("does not exist", "password authentication failed", "role ")

log = logging.getLogger("taskman.migrate")


class DatabaseNotReady(Exception):
    """The database did not accept a connection within the wait."""


def wait_for_database(url: str, wait_seconds: float) -> None:
    """Return once the database at `url` accepts a connection, trying every
    RETRY_INTERVAL_SECONDS and logging one line per failed try. Raises DatabaseNotReady, with
    the last error, if it has not after `wait_seconds`."""
    engine = create_engine_for(_with_connect_timeout(url), pool_size=1, max_overflow=0)
    deadline = time.monotonic() + wait_seconds
    try:
        for attempt in itertools.count(1):
            try:
                with engine.connect():
                    return
            except OperationalError as error:
                reason = str(error.orig or error).strip().splitlines()[0]
                if any(final in reason for final in _FINAL):
                    raise DatabaseNotReady(reason) from error
                if time.monotonic() >= deadline:
                    raise DatabaseNotReady(
                        f"the database did not accept a connection in {wait_seconds:g} s "
                        f"({attempt} tries): {reason}"
                    ) from error
                log.warning("database not accepting connections yet (try %d): %s", attempt, reason)
                time.sleep(RETRY_INTERVAL_SECONDS)
    finally:
        engine.dispose()


def _with_connect_timeout(url: str) -> str:
    parsed = normalised_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
    return parsed.render_as_string(hide_password=False)


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    url = settings.resolved_database_url
    try:
        wait_for_database(url, settings.migrate_wait_seconds)
        upgrade_to_head(url)
    except (DatabaseNotReady, DBAPIError) as error:
        where = make_url(url).render_as_string(hide_password=True)
        cause = error.orig if isinstance(error, DBAPIError) else error
        reason = str(cause).strip() or type(cause).__name__
        print(f"migrate: cannot use {where}: {' '.join(reason.split())}", file=sys.stderr)
        return 1
    log.info("the database is at the newest schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())

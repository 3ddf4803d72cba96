"""`python -m entrypoints.migrate`: bring the configured database to the newest schema.

It waits for the database first: under compose, `migrate` may start while PostgreSQL still runs
its first-boot initialisation or restarts after it, and a migration that gave up at once would
leave every other service waiting on it forever."""

from __future__ import annotations

import itertools
import logging
import time

from sqlalchemy.exc import OperationalError

from adapters.sql.engine import create_engine_for, normalised_url
from adapters.sql.migrations import upgrade_to_head
from entrypoints.settings import Settings

RETRY_INTERVAL_SECONDS = 0.5
# A host that drops packets (rather than refusing them) would otherwise hold one try for the
# operating system's TCP timeout, minutes, past the wait's bound.
CONNECT_TIMEOUT_SECONDS = 5

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


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    url = settings.resolved_database_url
    try:
        wait_for_database(url, settings.migrate_wait_seconds)
    except DatabaseNotReady as error:
        log.error("%s", error)
        raise SystemExit(1) from None
    upgrade_to_head(url)
    log.info("the database is at the newest schema")


if __name__ == "__main__":
    main()

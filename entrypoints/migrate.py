"""`python -m entrypoints.migrate`: bring the configured database to the newest schema.

A database that cannot be reached (missing, refused, wrong credentials) is reported in one line
on stderr, naming the database without its password, with exit status 1: the reason is what
the operator needs, not the driver's traceback."""

from __future__ import annotations

import logging
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from adapters.sql.migrations import upgrade_to_head
from entrypoints.settings import Settings


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    url = settings.resolved_database_url
    try:
        upgrade_to_head(url)
    except DBAPIError as error:
        where = make_url(url).render_as_string(hide_password=True)
        reason = str(error.orig).strip() or type(error.orig).__name__
        print(f"migrate: cannot use {where}: {' '.join(reason.split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

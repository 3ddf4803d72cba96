"""`python -m entrypoints.migrate`: bring the configured database to the newest schema."""

from __future__ import annotations

import logging

from adapters.sql.migrations import upgrade_to_head
from entrypoints.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    upgrade_to_head(settings.resolved_database_url)


if __name__ == "__main__":
    main()

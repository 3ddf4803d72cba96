"""Alembic's runtime hook: where the database is and what the schema should be."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from adapters.sql.engine import create_engine_for, normalised_url
from adapters.sql.tables import metadata

config = context.config
if config.config_file_name is not None:  # the alembic command line, with alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("no database URL: run `make migrate`, or alembic -x url=<URL> ...")
    return str(url)


def run_offline() -> None:
    context.configure(
        url=normalised_url(database_url()),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine_for(database_url())
    try:
        with engine.connect() as connection:
            is_sqlite = connection.dialect.name == "sqlite"
            context.configure(
                connection=connection,
                target_metadata=metadata,
                # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
                render_as_batch=is_sqlite,
                # Our SQLite connections issue their own BEGIN, so DDL there is transactional
                # too: a failed migration leaves nothing half done on either backend.
                transactional_ddl=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

"""Throwaway databases for integration tests: uniquely named, migrated by the real migrations,
dropped afterwards. Names carry the process id, so pytest-xdist workers never collide."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from adapters.sql.migrations import upgrade_to_head

PG_SERVER = "127.0.0.1:5432"
# Trust authentication on the test machines; whichever of these superusers exists.
PG_USERS = ("root", "postgres")


def connect_admin() -> Engine:
    """An autocommit engine on the server's `postgres` database (CREATE DATABASE needs one)."""
    errors = []
    for user in PG_USERS:
        engine = create_engine(
            f"postgresql+psycopg://{user}@{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as error:
            engine.dispose()
            errors.append(f"{user}: {error.orig}")
            continue
        return engine
    raise RuntimeError(f"PostgreSQL on {PG_SERVER} is not reachable: {'; '.join(errors)}")


class PostgresDatabases:
    """Creates databases on demand and drops each one it created (and only those)."""

    def __init__(self, admin: Engine) -> None:
        self._admin = admin
        self._created: list[str] = []

    def create(self, *, migrated: bool = True) -> str:
        name = f"taskman_it_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        url = self._admin.url.set(database=name).render_as_string(hide_password=False)
        if migrated:
            upgrade_to_head(url)
        return url

    def drop(self, url: str) -> None:
        database = make_url(url).database
        if database not in self._created:
            raise ValueError(f"{database} was not created here; refusing to drop it")
        with self._admin.connect() as connection:
            # FORCE: a test that failed half way may leave a connection behind.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        self._created.remove(database)

    def drop_all(self) -> None:
        for name in list(self._created):
            self.drop(self._admin.url.set(database=name).render_as_string(hide_password=False))

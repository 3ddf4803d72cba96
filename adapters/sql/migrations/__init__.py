"""The schema's history, as Alembic revisions, and the calls that apply it.

Entry points pass the database URL in; nothing here reads settings (adapters never import
entrypoints). `alembic.ini` at the repository root points here for the alembic command line,
which takes the URL as `alembic -x url=... <command>`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # Passed as an attribute, not an option: ConfigParser would read a '%' in a password as
    # interpolation.
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Apply every migration not yet applied to the database at `url` (which may be empty)."""
    command.upgrade(alembic_config(url), "head")

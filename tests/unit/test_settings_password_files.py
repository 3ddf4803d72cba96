"""DATABASE_PASSWORD_FILE and BROKER_PASSWORD_FILE: compose keeps passwords in files, out of the
environment and out of docker-compose.yml; the URLs the processes use carry them."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.connection import parse_url
from sqlalchemy.engine import make_url

from entrypoints.settings import Settings


def secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    return path


def test_the_database_password_file_goes_into_the_url(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql+psycopg://taskman:old@postgres:5432/taskman?sslmode=disable",
        database_password_file=secret(tmp_path, "pg", "p@ss:w/rd %?#"),
    )
    url = make_url(settings.resolved_database_url)
    assert url.password == "p@ss:w/rd %?#"
    assert (url.username, url.host, url.port, url.database) == (
        "taskman",
        "postgres",
        5432,
        "taskman",
    )
    assert url.query == {"sslmode": "disable"}


def test_the_broker_password_file_goes_into_a_url_with_no_user(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        broker_url="redis://redis:6379/0",
        broker_password_file=secret(tmp_path, "redis", "s3cret/with@signs"),
    )
    parsed = parse_url(settings.resolved_broker_url)  # as redis-py (and so kombu) reads it
    assert parsed["password"] == "s3cret/with@signs"
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("redis", 6379, 0)


def test_without_a_password_file_the_urls_are_as_given() -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql+psycopg://u:p@h/d",
        broker_url="redis://:x@h:1/2",
    )
    assert settings.resolved_database_url == "postgresql+psycopg://u:p@h/d"
    assert settings.resolved_broker_url == "redis://:x@h:1/2"


def test_an_unreadable_password_file_is_an_error_not_an_empty_password(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql+psycopg://u@h/d",
        database_password_file=tmp_path / "missing",
    )
    with pytest.raises(OSError):
        _ = settings.resolved_database_url

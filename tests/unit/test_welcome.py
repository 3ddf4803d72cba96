"""What `make run` prints before it starts the processes (entrypoints.welcome)."""

from pathlib import Path

from entrypoints.settings import Settings
from entrypoints.welcome import summary


def test_on_the_embedded_defaults_it_names_the_urls_and_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, port=8123, data_dir=tmp_path, database_url=None, broker_url=None
    )
    text = summary(settings)

    assert "http://127.0.0.1:8123/api/v1" in text
    assert "http://127.0.0.1:8123/docs" in text
    assert f"data dir      {tmp_path.resolve()}" in text.splitlines()
    assert str(tmp_path.resolve() / "taskman.db") in text


def test_configured_servers_are_named_without_their_passwords(tmp_path: Path) -> None:
    text = summary(
        Settings(
            _env_file=None,
            host="0.0.0.0",
            data_dir=tmp_path,
            database_url="postgresql+psycopg://taskman:s3cret@db:5432/taskman",
            broker_url="redis://:hunter2@redis:6379/1",
        )
    )

    assert "http://localhost:8000/docs" in text  # every interface: reached as localhost
    assert "db:5432/taskman" in text and "redis:6379/1" in text
    assert "s3cret" not in text and "hunter2" not in text
    assert "data dir" not in text  # nothing lives there

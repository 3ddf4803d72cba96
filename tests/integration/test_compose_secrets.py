"""compose's `secrets` service (docker/generate_secrets.py) run as a plain process, and what
compose does with its files, on real servers: redis-server started on its redis.conf requires
the password; a PostgreSQL that checks passwords accepts `migrate` with DATABASE_PASSWORD_FILE;
the processes' URLs (Settings) carry the passwords, whatever characters they hold."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml
from kombu import Connection
from sqlalchemy import text

from entrypoints.settings import Settings
from tests.commands import MIGRATE, ROOT
from tests.fault.servers import OwnPostgres
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import base_environment, launch

SCRIPT = ROOT / "docker" / "generate_secrets.py"
AWKWARD = 'a "quoted" p@ss:w/rd %?# \\ with spaces, é'


def generate(directory: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"POSTGRES_PASSWORD", "REDIS_PASSWORD"}}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(directory)],
        env={**env, **variables},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done


def passwords(directory: Path) -> tuple[str, str]:
    return (
        (directory / "postgres_password").read_text(encoding="utf-8"),
        (directory / "redis_password").read_text(encoding="utf-8"),
    )


def test_first_start_generates_random_passwords_and_later_starts_keep_them(tmp_path: Path) -> None:
    first = generate(tmp_path / "secrets")
    postgres, redis_password = passwords(tmp_path / "secrets")
    assert len(postgres) >= 40 and len(redis_password) >= 40 and postgres != redis_password
    assert "postgres_password: generated" in first.stdout
    assert postgres not in first.stdout and redis_password not in first.stdout
    for name in ("postgres_password", "redis_password", "redis.conf"):
        mode = stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode)
        assert mode == 0o444, (name, oct(mode))

    again = generate(tmp_path / "secrets")
    assert "redis_password: kept" in again.stdout
    assert passwords(tmp_path / "secrets") == (postgres, redis_password)
    other = tmp_path / "other"
    generate(other)
    assert passwords(other)[0] != postgres


def test_passwords_set_in_env_are_used(tmp_path: Path) -> None:
    generate(tmp_path, POSTGRES_PASSWORD="given-pg")
    done = generate(tmp_path, POSTGRES_PASSWORD="given-pg", REDIS_PASSWORD=AWKWARD)
    assert passwords(tmp_path) == ("given-pg", AWKWARD)
    assert "redis_password: from REDIS_PASSWORD" in done.stdout


@pytest.mark.parametrize("given", [None, AWKWARD], ids=["generated", "awkward"])
def test_redis_requires_the_password_and_the_broker_url_carries_it(
    tmp_path: Path, given: str | None
) -> None:
    generate(tmp_path, **({"REDIS_PASSWORD": given} if given else {}))
    port = free_port()
    # As compose starts it: on the generated redis.conf, options after it.
    argv = ["redis-server", str(tmp_path / "redis.conf"), "--port", str(port)]
    argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = launch("redis", argv, os.environ, tmp_path)
    server.start()
    try:
        server.wait_for_output("Ready to accept connections", timeout=10)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        settings = Settings(
            _env_file=None,
            broker_url=f"redis://127.0.0.1:{port}/0",
            broker_password_file=tmp_path / "redis_password",
        )
        assert redis.Redis.from_url(settings.resolved_broker_url).ping()
        with Connection(settings.resolved_broker_url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
            assert connection.connected
        # compose's health check of Redis, as its shell runs it, on this server and folder.
        assert redis_health_check(tmp_path, port) == 0
        (tmp_path / "redis_password").chmod(0o644)
        (tmp_path / "redis_password").write_text("wrong")
        assert redis_health_check(tmp_path, port) != 0, "a NOAUTH answer must fail the check"
    finally:
        server.stop()


def redis_health_check(secrets: Path, port: int) -> int:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kind, command = compose["services"]["redis"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$").replace("/secrets/", f"{secrets}/")
    command = command.replace("redis-cli ", f"redis-cli -p {port} ")
    return subprocess.run(["sh", "-c", command], timeout=30).returncode


def exit_code(process: ManagedProcess, timeout: float) -> int | None:
    wait_until(lambda: not process.running, timeout, what=f"{process.name} exits")
    return process.stop()


def test_migrate_logs_in_to_a_postgresql_that_checks_passwords(tmp_path: Path) -> None:
    generate(tmp_path, POSTGRES_PASSWORD=AWKWARD)
    server = OwnPostgres()
    try:
        server.start()
        with server.admin().connect() as connection:
            connection.execute(text("SET password_encryption = 'scram-sha-256'"))
            quoted = AWKWARD.replace("'", "''")
            connection.execute(text(f"ALTER ROLE postgres PASSWORD '{quoted}'"))
            # From now on TCP logins need the password (the socket stays trusted, as in the
            # postgres image).
            (server.data / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
            )
            connection.execute(text("SELECT pg_reload_conf()"))
        server.admin().dispose()
        without = base_environment(DATABASE_URL=server.url, MIGRATE_WAIT_SECONDS="0.1")
        refused = launch("migrate-without-password", MIGRATE, without, tmp_path).start()
        assert exit_code(refused, timeout=30) == 1
        assert "password" in refused.output()

        env = {**without, "DATABASE_PASSWORD_FILE": str(tmp_path / "postgres_password")}
        migrate = launch("migrate", MIGRATE, env, tmp_path).start()
        assert exit_code(migrate, timeout=60) == 0, migrate.log_tail()
        assert "the database is at the newest schema" in migrate.output()
    finally:
        server.stop()

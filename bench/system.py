"""The system under test, started by the system tests' harness, configured as in production.

The harness tunes a few settings for fast tests (short leases, a 50 ms dispatcher poll, one
worker process per pool); the bench puts each back to its production default, then applies any
setting given in the caller's environment, so `WORKER_CONCURRENCY=4 make bench` measures that."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from entrypoints.settings import Settings
from tests.processes import ManagedProcess
from tests.system.harness import TEST_SETTINGS, RunningSystem, system_on_postgres_and_redis

# One line per task in every worker costs real CPU on two cores; both taskman and the bare
# Celery baseline run at this level so neither pays it.
BENCH_LOG_LEVEL = "WARNING"


@dataclass(frozen=True)
class SystemUnderTest:
    system: RunningSystem
    env: dict[str, str]
    log_dir: Path

    @property
    def libpq_url(self) -> str:
        return self.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")

    @property
    def redis_url(self) -> str:
        return self.env["BROKER_URL"]

    def process(self, name: str) -> ManagedProcess:
        return self.system.processes[name]

    def setting(self, name: str) -> str:
        return self.env[name]


def production_settings() -> dict[str, str]:
    settings: dict[str, str] = {}
    for name in TEST_SETTINGS:
        settings[name] = str(Settings.model_fields[name.lower()].default)
    settings["LOG_LEVEL"] = BENCH_LOG_LEVEL
    for name in Settings.model_fields:
        if name.upper() in os.environ and name not in {"database_url", "broker_url", "port"}:
            settings[name.upper()] = os.environ[name.upper()]
    settings.setdefault(
        "DELAY_MEDIUM_SECONDS", str(Settings.model_fields["delay_medium_seconds"].default)
    )
    settings.setdefault(
        "DELAY_LOW_SECONDS", str(Settings.model_fields["delay_low_seconds"].default)
    )
    settings.setdefault(
        "MESSAGE_MAX_TASKS", str(Settings.model_fields["message_max_tasks"].default)
    )
    return settings


def differences_from_make_run(settings: dict[str, str]) -> dict[str, dict[str, str]]:
    """The settings of `settings` whose value is not `make run`'s default, each with both."""
    differ = {}
    for name, value in settings.items():
        field = Settings.model_fields.get(name.lower())
        if field is not None and str(field.default) != value:
            differ[name] = {"bench": value, "make_run": str(field.default)}
    return differ


@contextmanager
def running_system(log_dir: Path) -> Iterator[SystemUnderTest]:
    """A fresh PostgreSQL database and a redis-server of its own, both gone afterwards."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with system_on_postgres_and_redis(log_dir, **production_settings()) as (system, _redis):
        env = dict(system.processes["api"].env)
        yield SystemUnderTest(system=system, env=env, log_dir=log_dir)

"""Runs the whole system as processes, the way a user runs it, for tests over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.commands import MIGRATE, procfile
from tests.integration.databases import PostgresDatabases, connect_admin
from tests.processes import ManagedProcess, free_port, wait_until

FINISHED = {"success", "failed", "cancelled"}

# Fast enough for tests, production-like where the tests measure it (the priority delays).
TEST_SETTINGS = {
    "DISPATCHER_POLL_SECONDS": "0.05",
    "RETRY_BACKOFF_BASE_SECONDS": "0.1",
    "RETRY_BACKOFF_CAP_SECONDS": "0.5",
    "LOST_MESSAGE_AFTER_SECONDS": "2",
    "LEASE_SECONDS": "10",
    "MAX_BATCH_PAIRS": "1000",
    "WORKER_CONCURRENCY": "1",
    "API_WORKERS": "1",
    "LOG_LEVEL": "INFO",
}


def base_environment(**overrides: str) -> dict[str, str]:
    """The caller's environment without any taskman setting, plus the test settings."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROKER_URL", "PORT"}}
    env.update(TEST_SETTINGS)
    env.update(overrides)
    return env


def launch(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    """A Procfile-style command ("python -m ...") run by the interpreter running the tests."""
    if argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    return ManagedProcess(name, argv, env=env, log_path=log_dir / f"{name}.log")


class RunningSystem:
    """The system under test: its address, its processes, an HTTP client."""

    def __init__(self, port: int, processes: dict[str, ManagedProcess]) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.port = port
        self.processes = processes
        self.http = httpx.Client(base_url=self.base_url, timeout=10.0)
        # Sent with every request of the scenarios once `authorize` gave a key (AUTH=required).
        self.auth_headers: dict[str, str] = {}

    def authorize(self, key: str) -> None:
        self.auth_headers = {"Authorization": f"Bearer {key}"}
        self.http.headers.update(self.auth_headers)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        def healthy() -> bool:
            for process in self.processes.values():
                if not process.running:
                    raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
            try:
                return self.http.get("/api/v1/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout, interval=0.2, what="GET /api/v1/health answers 200")

    def create(self, a: int, b: int, priority: int = 1) -> dict[str, Any]:
        response = self.http.post("/api/v1/tasks", json={"a": a, "b": b, "priority": priority})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def task(self, task_id: int) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_for(
        self, task_id: int, statuses: set[str] = FINISHED, timeout: float = 30.0
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["status"] in statuses else None

        try:
            return wait_until(reached, timeout, what=f"task {task_id} in {sorted(statuses)}")
        except TimeoutError as timeout_error:
            # What a failure on a loaded CI machine needs to be understood: the task as stored
            # and what each process said last.
            tails = "\n".join(
                f"--- {name}:\n{process.log_tail(12)}" for name, process in self.processes.items()
            )
            raise TimeoutError(
                f"{timeout_error}; the task: {self.task(task_id)}\n{tails}"
            ) from None

    def restart(self, *names: str, **env: str) -> None:
        for name in names:
            process = self.processes[name]
            process.stop()
            process.env.update(env)
            process.start()

    def stop(self) -> None:
        self.http.close()
        for process in self.processes.values():  # all at once: each may take a while to drain
            process.signal_group(signal.SIGTERM)
        for process in self.processes.values():
            process.stop()


def keys_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m entrypoints.keys ARGS` on the system's store and pepper, as operators run it."""
    argv = [sys.executable, "-m", "entrypoints.keys", *args]
    return subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=60)


def new_key(env: Mapping[str, str], tenant: str, scopes: str) -> str:
    """A key made with the CLI: the one line it prints on stdout."""
    made = keys_cli(env, "create", "--tenant", tenant, "--scopes", scopes)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@contextmanager
def postgres_database() -> Iterator[str]:
    """An empty database of the test's own (the system's `migrate` process builds the schema)."""
    databases = PostgresDatabases(connect_admin())
    try:
        yield databases.create(migrated=False)
    finally:
        databases.drop_all()


@contextmanager
def own_redis(log_dir: Path) -> Iterator[tuple[ManagedProcess, int]]:
    """A redis-server of the test's own, so a test may stop it without touching anyone else's."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    redis = launch("redis", [*argv, "--save", "", "--appendonly", "no"], os.environ, log_dir)
    redis.start()
    try:
        wait_until(lambda: _answers(port), 10, what="redis-server answers PING")
        yield redis, port
    finally:
        redis.stop()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def system_on_postgres_and_redis(
    log_dir: Path, **overrides: str
) -> Iterator[tuple[RunningSystem, ManagedProcess]]:
    """Migrations, then every Procfile process started on its own, as compose would."""
    with postgres_database() as database_url, own_redis(log_dir) as (redis, redis_port):
        port = free_port()
        env = base_environment(
            DATABASE_URL=database_url,
            BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
            PORT=str(port),
            **overrides,
        )
        with procfile_system(env, port, log_dir) as system:
            yield system, redis


@contextmanager
def procfile_system(env: Mapping[str, str], port: int, log_dir: Path) -> Iterator[RunningSystem]:
    """Migrations, then every Procfile process started on its own with `env`, healthy; all
    stopped afterwards."""
    migrate = launch("migrate", MIGRATE, env, log_dir).start()
    wait_until(lambda: not migrate.running, 60, what="migrations")
    assert migrate.stop() == 0, migrate.log_tail()
    processes = {name: launch(name, argv, env, log_dir) for name, argv in procfile().items()}
    system = RunningSystem(port, processes)
    try:
        for process in processes.values():
            process.start()
        system.wait_healthy()
        yield system
    finally:
        system.stop()


@contextmanager
def system_from_make_run(log_dir: Path, data_dir: Path) -> Iterator[RunningSystem]:
    """`make run` with nothing configured: the embedded defaults, in a data directory of its own."""
    port = free_port()
    env = base_environment(PORT=str(port), DATA_DIR=str(data_dir))
    # As a user runs it: the default number of API processes, both writing to one SQLite file.
    del env["API_WORKERS"]
    make_run = launch("make-run", ["make", "--no-print-directory", "run"], env, log_dir)
    system = RunningSystem(port, {"make-run": make_run})
    try:
        make_run.start()
        system.wait_healthy(timeout=120)
        yield system
    finally:
        system.http.close()
        make_run.stop(timeout=20, signum=signal.SIGINT)

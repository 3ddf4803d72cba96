"""Runs the whole system as processes, the way a user runs it, for tests over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.commands import MIGRATE, ROOT, procfile

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_environment(**overrides: str) -> dict[str, str]:
    """The caller's environment without any taskman setting, plus the test settings."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROKER_URL", "PORT"}}
    env.update(TEST_SETTINGS)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


class Process:
    """One child process with its own session, so stopping it stops its children too."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int = signal.SIGTERM) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self.popen = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


class RunningSystem:
    """The system under test: its address, its processes, an HTTP client."""

    def __init__(self, port: int, processes: dict[str, Process]) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.port = port
        self.processes = processes
        self.http = httpx.Client(base_url=self.base_url, timeout=10.0)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        def healthy() -> bool:
            for process in self.processes.values():
                if process.popen is not None and not process.running:
                    raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
            try:
                return self.http.get("/api/v1/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout, interval=0.2)

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

        return wait_until(reached, timeout)  # type: ignore[no-any-return]

    def restart(self, *names: str, **env: str) -> None:
        for name in names:
            process = self.processes[name]
            process.stop()
            process.env.update(env)
            process.start()

    def stop(self) -> None:
        self.http.close()
        for process in self.processes.values():  # all at once: each may take a while to drain
            process.send()
        for process in self.processes.values():
            process.stop()


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"taskman_sys_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def own_redis(log_dir: Path) -> Iterator[Process]:
    """A redis-server of the test's own, so a test may stop it without touching anyone else's."""
    port = free_port()
    redis = Process(
        "redis",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        os.environ,
        log_dir,
    )
    redis.start()
    redis.port = port  # type: ignore[attr-defined]
    try:
        wait_until(lambda: _answers(port), 10)
        yield redis
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
) -> Iterator[tuple[RunningSystem, Process]]:
    """Migrations, then every Procfile process started on its own, as compose would."""
    with postgres_database() as database_url, own_redis(log_dir) as redis:
        port = free_port()
        env = base_environment(
            DATABASE_URL=database_url,
            BROKER_URL=f"redis://127.0.0.1:{redis.port}/0",  # type: ignore[attr-defined]
            PORT=str(port),
            **overrides,
        )
        migrate = Process("migrate", MIGRATE, env, log_dir)
        migrate.start()
        assert migrate.popen is not None
        assert migrate.popen.wait(60) == 0, migrate.log_tail()
        processes = {name: Process(name, argv, env, log_dir) for name, argv in procfile().items()}
        system = RunningSystem(port, processes)
        try:
            for process in processes.values():
                process.start()
            system.wait_healthy()
            yield system, redis
        finally:
            system.stop()


@contextmanager
def system_from_make_run(log_dir: Path, data_dir: Path) -> Iterator[RunningSystem]:
    """`make run` with nothing configured: the embedded defaults, in a data directory of its own."""
    port = free_port()
    env = base_environment(PORT=str(port), DATA_DIR=str(data_dir))
    make_run = Process("make-run", ["make", "--no-print-directory", "run"], env, log_dir)
    system = RunningSystem(port, {"make-run": make_run})
    try:
        make_run.start()
        system.wait_healthy(timeout=120)
        yield system
    finally:
        system.http.close()
        make_run.stop(signal.SIGINT, timeout=20)

"""Issue 10, parts 3 and 4, on the whole system as processes (PostgreSQL + a Redis of its own):
no request waits unboundedly on a row lock, a statement or the pool, and a Redis connection the
server closed is re-established transparently.

The Redis here requires a password, so the tests can check that no answer ever reveals it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from adapters.broker.queue import CONSUMERS_CACHE_SECONDS
from tests.commands import procfile
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import (
    RunningSystem,
    base_environment,
    launch,
    postgres_database,
    procfile_system,
)

pytestmark = pytest.mark.system

PASSWORD = "s3cret-never-shown"
LOCK_HELD_SECONDS = 8.0
STORM_CLIENTS = 200
# Each PUT must answer within this (the clients gave up after 2 s); the defaults bound a
# PUT to about twice DB_LOCK_TIMEOUT_SECONDS.
PUT_CLIENT_TIMEOUT_SECONDS = 6.0
# "In milliseconds" for the unrelated requests, with room for a loaded 2-core machine: far below
# the lock's 8 s, which is what they waited before. 2 s, not 1: on a slow hour of the 2-core
# machine (2026-12-01, bare Celery at 40% of its usual rate) the first health probe, sent as the
# storm's 200 connections opened, took 1.4 s in a clean-clone CI run (every later one under
# 0.25 s); waiting behind the lock is still four times that bound.
UNRELATED_BOUND_SECONDS = 2.0


class System:
    def __init__(
        self, running: RunningSystem, redis_server: ManagedProcess, redis_port: int, env: dict
    ) -> None:
        self.running = running
        self.redis_server = redis_server
        self.redis_port = redis_port
        self.env = env

    @property
    def database_url(self) -> str:
        return str(self.env["DATABASE_URL"]).replace("postgresql+psycopg://", "postgresql://")

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, password=PASSWORD)


@contextmanager
def password_redis(log_dir: Path) -> Iterator[tuple[ManagedProcess, int]]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD]
    server = launch("redis", [*argv, "--save", "", "--appendonly", "no"], os.environ, log_dir)
    server.start()
    try:
        wait_until(lambda: _pings(port), 10, what="redis-server answers PING")
        yield server, port
    finally:
        server.stop()


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, password=PASSWORD, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    log_dir = tmp_path_factory.mktemp("logs")
    with postgres_database() as database_url, password_redis(log_dir) as (server, redis_port):
        port = free_port()
        env = base_environment(
            DATABASE_URL=database_url,
            BROKER_URL=f"redis://:{PASSWORD}@127.0.0.1:{redis_port}/0",
            PORT=str(port),
            # A message a worker's BRPOP took on a connection the server then killed is lost in
            # flight (Redis popped it, the reply never arrived); the dispatcher republishes it
            # after this long. Short here so the kill storm's test sees that repair promptly.
            LOST_MESSAGE_AFTER_SECONDS="2",
        )
        with procfile_system(env, port, log_dir) as running:
            yield System(running, server, redis_port, env)


# --- Part 3: bounded waits -------------------------------------------------------------------


@contextmanager
def row_locked(database_url: str, task_id: int) -> Iterator[None]:
    """An outside session holding the task's row FOR UPDATE until the block ends."""
    with psycopg.connect(database_url) as outside:
        outside.execute("SELECT id FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        try:
            yield
        finally:
            outside.rollback()


def sessions_waiting_on_a_lock(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as probe:
        return probe.execute(
            "SELECT pid, application_name, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchall()


async def _storm(base_url: str, task_id: int) -> list[httpx.Response | Exception]:
    limits = httpx.Limits(max_connections=STORM_CLIENTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=PUT_CLIENT_TIMEOUT_SECONDS, limits=limits
    ) as client:

        async def put(n: int) -> httpx.Response:
            return await client.put(f"/api/v1/tasks/{task_id}", json={"priority": 1 + n % 3})

        outcomes = await asyncio.gather(
            *(put(n) for n in range(STORM_CLIENTS)), return_exceptions=True
        )
    return [o if isinstance(o, httpx.Response | Exception) else RuntimeError(o) for o in outcomes]


def _unrelated_requests(
    base_url: str, other_id: int, stop: threading.Event
) -> list[tuple[str, int, float]]:
    """Health, a create and a read of another task, one after the other, until `stop`:
    (what, status, seconds) of each. Run on a thread of its own with a client of its own, so
    the storm's 200 clients in the test's event loop do not delay them on the client side."""
    seen: list[tuple[str, int, float]] = []
    with httpx.Client(base_url=base_url, timeout=LOCK_HELD_SECONDS * 2) as client:
        while not stop.is_set():
            for what, send in (
                ("health", lambda: client.get("/api/v1/health")),
                ("create", lambda: client.post("/api/v1/tasks", json={"a": 1, "b": 2})),
                ("read", lambda: client.get(f"/api/v1/tasks/{other_id}")),
            ):
                started = time.monotonic()
                response = send()
                seen.append((what, response.status_code, time.monotonic() - started))
            stop.wait(0.05)
    return seen


def test_a_locked_row_never_wedges_the_api(system: System) -> None:
    api = system.running
    hot = api.create(1, 2, priority=3)  # queued for 10 s: its priority may change
    other = api.create(3, 4, priority=3)

    with row_locked(system.database_url, hot["id"]), ThreadPoolExecutor(1) as prober:
        locked_at = time.monotonic()
        stop = threading.Event()
        probing = prober.submit(_unrelated_requests, api.base_url, other["id"], stop)
        try:
            storm = asyncio.run(_storm(api.base_url, hot["id"]))
        finally:
            stop.set()
        unrelated = probing.result()
        # Every client has its answer and the lock is still held: no session may still wait.
        still_locked = time.monotonic() - locked_at < LOCK_HELD_SECONDS
        waiting = sessions_waiting_on_a_lock(system.database_url)
        time.sleep(max(0.0, LOCK_HELD_SECONDS - (time.monotonic() - locked_at)))

    failures = [o for o in storm if isinstance(o, Exception)]
    assert not failures, f"{len(failures)} PUTs got no answer, e.g. {failures[0]!r}"
    statuses = sorted({o.status_code for o in storm if isinstance(o, httpx.Response)})
    assert set(statuses) <= {200, 503}, statuses
    for response in storm:
        assert isinstance(response, httpx.Response)
        if response.status_code == 503:
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["status"] == 503
    assert 503 in statuses, "the lock was held throughout: some PUTs must have been refused"

    assert still_locked, "the storm outlasted the lock: the bound is not what the test expects"
    assert waiting == [], f"sessions still waiting on the row lock: {waiting}"

    kinds = {what for what, _, _ in unrelated}
    assert kinds == {"health", "create", "read"}, unrelated
    bad = [(w, s) for w, s, _ in unrelated if s not in (200, 201)]
    assert not bad, bad
    slow = [(w, round(t, 2)) for w, _, t in unrelated if t >= UNRELATED_BOUND_SECONDS]
    assert not slow, f"unrelated requests waited behind the locked row: {slow} of {unrelated}"

    # The lock is gone: the task can move again.
    moved = api.http.put(f"/api/v1/tasks/{hot['id']}", json={"priority": 1})
    assert moved.status_code == 200, moved.text


def test_a_statement_timeout_is_a_503_with_retry_after(system: System, tmp_path: Path) -> None:
    """An API process whose statement timeout (0.3 s) ends before its lock timeout (30 s): a read
    queued behind an ACCESS EXCLUSIVE lock is cancelled by the statement timeout."""
    port = free_port()
    env = {
        **system.env,
        "PORT": str(port),
        "DB_STATEMENT_TIMEOUT_SECONDS": "0.3",
        "DB_LOCK_TIMEOUT_SECONDS": "30",
    }
    task = system.running.create(5, 6, priority=3)
    extra_api = launch("api-statement-timeout", procfile()["api"], env, tmp_path).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as client:
            wait_until(lambda: _answers(client), 30, what="the extra API answers")
            with psycopg.connect(system.database_url) as outside:
                outside.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
                response = client.get(f"/api/v1/tasks/{task['id']}")
                outside.rollback()
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["status"] == 503
            assert client.get(f"/api/v1/tasks/{task['id']}").status_code == 200
    finally:
        extra_api.stop()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/health").status_code == 200
    except httpx.TransportError:
        return False


# --- Part 4: Redis connections closed by the server -------------------------------------------


def _publish_failures(system: System) -> list[str]:
    """The API's lines saying a create's publication failed and was left to the dispatcher
    (application/publication.py): none means every create was published by the API itself."""
    log = system.running.processes["api"].log_text()
    return [line for line in log.splitlines() if "left for the dispatcher" in line]


def test_connections_the_server_closed_are_reestablished_transparently(system: System) -> None:
    """For longer than the API caches the workers' answers (CONSUMERS_CACHE_SECONDS), so /health
    asks the workers again over connections the server has closed. Every task finishes: one
    whose message a killed BRPOP connection lost in flight is republished by the dispatcher's
    lost-message sweep (LOST_MESSAGE_AFTER_SECONDS, 2 s here), run once, never twice."""
    api = system.running
    api.wait_healthy()
    api.create(1, 1, priority=1)  # every pooled connection has been used once
    created = []
    deadline = time.monotonic() + CONSUMERS_CACHE_SECONDS + 1.5
    while time.monotonic() < deadline:
        assert system.redis().client_kill_filter(_type="normal") >= 1
        health = api.http.get("/api/v1/health")
        assert health.status_code == 200, health.text
        assert system.redis().client_kill_filter(_type="normal") >= 1
        task = api.create(20, 22, priority=1)
        assert not _publish_failures(system), "published later by the dispatcher, not at creation"
        created.append(task["id"])
        time.sleep(0.3)
    for task_id in created:
        assert api.wait_for(task_id, timeout=30)["result"] == 42


def test_with_redis_down_health_names_host_port_and_reason_never_the_password(
    system: System,
) -> None:
    api = system.running
    system.redis_server.stop()
    try:
        down = wait_until(
            lambda: (r := api.http.get("/api/v1/health")).status_code == 503 and r, 10
        )
        body = down.json()
        assert f"127.0.0.1:{system.redis_port}" in body["detail"], body
        assert "refused" in body["detail"].lower(), body
        assert PASSWORD not in down.text
    finally:
        system.redis_server.start()
    api.wait_healthy()

"""Celery's own tools on the running system (PostgreSQL + Redis, each process on its own): task
events reach Celery's event receiver, `celery -A entrypoints.celery_app inspect` sees the three
pools, Flower lists taskman's tasks and keeps one node per pool across a restart, and the
health routes tell live, ready and degraded apart."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.broker.app import create_celery_app
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import RunningSystem, launch, system_on_postgres_and_redis

pytestmark = pytest.mark.system

HOST = socket.gethostname()
CELERY_APP = ["python", "-m", "celery", "-A", "entrypoints.celery_app"]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with system_on_postgres_and_redis(tmp_path_factory.mktemp("logs")) as (system, _):
        yield system


class EventLog:
    """Celery's EventReceiver on the system's broker, in a thread, keeping every event."""

    def __init__(self, broker_url: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._app = create_celery_app(broker_url, visibility_timeout_seconds=60)
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self._app.connection_for_read() as connection:
            self._receiver = self._app.events.Receiver(
                connection, handlers={"*": self.events.append}
            )
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def __enter__(self) -> EventLog:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(10)

    def of(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in list(self.events)
            if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
        ]


def test_task_events_reach_celery_s_event_receiver(system: RunningSystem) -> None:
    """Events are off by default (TASK_EVENTS); `celery control enable_events`, what Flower
    sends when it starts, turns them on in the running workers."""
    env = system.processes["api"].env
    command = [sys.executable, *CELERY_APP[1:], "control", "enable_events", "--timeout", "5"]
    enabled = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert enabled.returncode == 0, enabled.stderr
    assert len(re.findall(r"task events (?:already )?enabled", enabled.stdout)) == 3, enabled.stdout
    with EventLog(env["BROKER_URL"]) as log:
        # Heartbeats every 2 s: the first one says the receiver listens, so no event is missed.
        wait_until(lambda: log.of("worker-heartbeat", hostname=f"high@{HOST}"), 15)
        task = system.create(3, 4, priority=1)
        assert system.wait_for(task["id"])["result"] == 7

        args = f"({task['id']}, 1)"  # (task id, dispatch number)
        (received,) = wait_until(lambda: log.of("task-received", args=args), 10)
        uuid = received["uuid"]
        started = wait_until(lambda: log.of("task-started", uuid=uuid), 10)
        succeeded = wait_until(lambda: log.of("task-succeeded", uuid=uuid), 10)

    assert received["name"] == "taskman.execute"
    assert received["hostname"] == f"high@{HOST}"
    # The Celery id names the task and the dispatch, readable in Flower.
    assert uuid.startswith(f"{task['id']}.1.")
    assert started[0]["hostname"] == succeeded[0]["hostname"] == f"high@{HOST}"
    assert succeeded[0]["runtime"] >= 0


def test_celery_inspect_sees_the_three_pools_by_their_stable_names(system: RunningSystem) -> None:
    env = system.processes["api"].env
    command = [sys.executable, *CELERY_APP[1:], "inspect", "active_queues", "--json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    replies = json.loads(result.stdout)
    assert {node: [q["name"] for q in queues] for node, queues in replies.items()} == {
        f"high@{HOST}": ["high"],
        f"medium@{HOST}": ["medium"],
        f"low@{HOST}": ["low"],
    }


@pytest.fixture
def flower(system: RunningSystem, tmp_path: Any) -> Iterator[httpx.Client]:
    port = free_port()
    env = {**system.processes["api"].env, "FLOWER_UNAUTHENTICATED_API": "true"}
    argv = [*CELERY_APP, "flower", f"--port={port}", "--address=127.0.0.1"]
    process: ManagedProcess = launch("flower", argv, env, tmp_path)
    process.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)

    def answers() -> bool:
        if not process.running:
            raise RuntimeError(f"flower exited:\n{process.log_tail()}")
        try:
            return client.get("/api/workers").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, 30, interval=0.2, what="flower answers")
        yield client
    finally:
        client.close()
        process.stop()


def test_flower_lists_taskman_s_tasks_and_one_node_per_pool_across_a_restart(
    system: RunningSystem, flower: httpx.Client
) -> None:
    def high_nodes() -> set[str]:
        workers = flower.get("/api/workers", params={"refresh": "1"}).json()
        return {name for name in workers if name.startswith("high")}

    wait_until(high_nodes, 15, what="flower sees the high pool")
    system.restart("worker-high")
    # Task events are off by default (TASK_EVENTS): the restarted worker sends them once Flower's
    # periodic `enable_events` (every 5 s) reaches it, which it logs. (Its heartbeats do not say
    # so: a worker sends them with task events off too.)
    system.processes["worker-high"].wait_for_output(
        r"Events of group \{task\} enabled by remote", timeout=30
    )
    # The restarted worker answers under the same name: Flower still knows one high node.
    task = system.create(5, 6, priority=1)
    assert system.wait_for(task["id"])["result"] == 11

    def listed() -> dict[str, Any] | None:
        tasks = flower.get("/api/tasks").json()
        mine = [t for t in tasks.values() if t.get("args") == f"({task['id']}, 1)"]
        return mine[0] if mine and mine[0].get("state") == "SUCCESS" else None

    shown = wait_until(listed, 15, what=f"flower lists task {task['id']} as SUCCESS")
    assert shown["name"] == "taskman.execute"
    assert shown["worker"] == f"high@{HOST}"
    assert shown["uuid"].startswith(f"{task['id']}.1.")
    assert shown["runtime"] >= 0
    assert high_nodes() == {f"high@{HOST}"}


def test_live_ready_and_degraded_while_the_high_pool_is_down(system: RunningSystem) -> None:
    assert system.http.get("/api/v1/health/live").json() == {"status": "ok"}
    assert system.http.get("/api/v1/health/ready").status_code == 200
    healthcheck = [sys.executable, "-m", "entrypoints.healthcheck"]
    env = system.processes["api"].env
    assert subprocess.run([*healthcheck, "worker", "high"], env=env, timeout=60).returncode == 0

    system.processes["worker-high"].stop()
    try:
        # A full count of consumers is cached a few seconds: poll until the gap shows.
        not_ready = wait_until(
            lambda: (r := system.http.get("/api/v1/health/ready")).status_code == 503 and r, 20
        )
        body = not_ready.json()
        assert not_ready.headers["content-type"].startswith("application/problem+json")
        assert body["missing"] == ["high"]
        assert body["detail"] == "no worker consumes the high queue"

        health = system.http.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json() == {
            "status": "degraded",
            "database": "ok",
            "broker": "ok",
            "workers": {"high": 0, "medium": 1, "low": 1},
        }
        assert system.http.get("/api/v1/health/live").status_code == 200
        assert subprocess.run([*healthcheck, "api"], env=env, timeout=60).returncode == 0
    finally:
        system.processes["worker-high"].start()
    wait_until(lambda: system.http.get("/api/v1/health/ready").status_code == 200, 30)
    assert system.http.get("/api/v1/health").json()["status"] == "ok"

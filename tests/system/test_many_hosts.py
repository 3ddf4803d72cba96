"""taskman as many machines on this one: each host is a network namespace of the test's own
(tests/system/netns.py) and every process reaches the others by IP address, never by localhost or
a shared file (each process has a DATA_DIR of its own).

    db          PostgreSQL (its own cluster) and redis-server, listening on the host's address
    api1, api2  the API; the test's clients, in the root namespace, take turns between them
    high1/2     a worker host each for priority 1 (two: one may vanish)
    medium, low a worker host each for priorities 2 and 3
    disp1/2     a dispatcher host each

It runs the seed's flow end to end, kills one dispatcher host's process while tasks fall due, and
cuts the power of a worker host mid-attempt."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.commands import MIGRATE, procfile
from tests.fault.servers import OwnPostgres
from tests.integration.celery_stack import DISPATCHER_READY, WORKER_READY, executions
from tests.processes import ManagedProcess, wait_until
from tests.system import netns
from tests.system.harness import FINISHED, base_environment, launch

pytestmark = pytest.mark.system

LEASE = 3.0
# Every repair within seconds. The start delays are short so that tasks fall due during a test;
# attempts on the priority-1 hosts hold for a second, so a host can vanish mid-attempt (under half
# the lease: an attempt still running at half of it may be interrupted as overdue).
SETTINGS = {
    "LEASE_SECONDS": str(LEASE),
    "LOST_MESSAGE_AFTER_SECONDS": "1",
    "DISPATCHER_POLL_SECONDS": "0.05",
    "DELAY_MEDIUM_SECONDS": "1",
    "DELAY_LOW_SECONDS": "2",
    "WORKER_CONCURRENCY": "1",
    "API_WORKERS": "1",
    "RETRY_JITTER": "0",
}
HIGH_ATTEMPT_SECONDS = "1.0"
API_PORT = 8000
WORKER_HOSTS = {"high1": "worker-high", "high2": "worker-high", "medium": "worker-medium"}
WORKER_HOSTS |= {"low": "worker-low"}
DISPATCHER_HOSTS = ("disp1", "disp2")


@dataclass
class Machines:
    """The hosts, the process running on each (its Procfile command), and the test's clients."""

    hosts: dict[str, netns.Host]
    processes: dict[str, ManagedProcess]
    postgres: OwnPostgres
    clients: list[httpx.Client]

    def __post_init__(self) -> None:
        self._turns = itertools.cycle(self.clients)

    def client(self) -> httpx.Client:
        """The next API host's client, in turn."""
        return next(self._turns)

    def create(self, a: int, b: int, priority: int) -> dict[str, Any]:
        response = self.client().post("/api/v1/tasks", json={"a": a, "b": b, "priority": priority})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def task(self, task_id: int) -> dict[str, Any]:
        response = self.client().get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_for(self, task_id: int, timeout: float = 30.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["status"] in FINISHED else None

        return wait_until(finished, timeout, interval=0.1, what=f"task {task_id} finished")

    def start(self, host: str, *, wait: bool = True, **env: str) -> None:
        """(Re)start the host's process, with `env` on top of its settings; unless `wait` is
        false, wait until it is ready (a task queued meanwhile waits for it on its queue)."""
        process = self.processes[host]
        process.stop()
        process.env.update(env)
        process.start()
        if not wait:
            return
        if host.startswith("api"):
            wait_until(lambda: _answers(self.hosts[host]), 60, interval=0.2, what=f"{host} up")
        else:
            process.wait_for_output(DISPATCHER_READY if host in DISPATCHER_HOSTS else WORKER_READY)

    def logs(self) -> str:
        return "\n".join(f"--- {name}:\n{p.log_tail(15)}" for name, p in self.processes.items())


def _answers(host: netns.Host) -> bool:
    try:
        url = f"http://{host.address}:{API_PORT}/api/v1/health"
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    folder = tmp_path_factory.mktemp("many-hosts")
    with netns.network() as network:
        db = network.add("db")
        prefix = ["ip", "netns", "exec", db.namespace]
        postgres = OwnPostgres(
            host=db.address, port=5432, prefix=prefix, trusted_network=netns.NETWORK
        )
        redis_argv = ["redis-server", "--bind", db.address, "--port", "6379", "--save", ""]
        # Protected mode answers only loopback clients; here every client is another host, and
        # the network is the test's own.
        argv = db.command([*redis_argv, "--appendonly", "no", "--protected-mode", "no"])
        redis = launch("redis", argv, os.environ, folder)
        processes: dict[str, ManagedProcess] = {}
        clients: list[httpx.Client] = []
        try:
            postgres.start()
            redis.start().wait_for_output(r"Ready to accept connections")
            commands = procfile()
            plan = {"api1": "api", "api2": "api", **WORKER_HOSTS}
            plan |= {name: "dispatcher" for name in DISPATCHER_HOSTS}
            for name in plan:
                network.add(name)

            def environment(host: netns.Host, **extra: str) -> dict[str, str]:
                return base_environment(
                    DATABASE_URL=postgres.url,
                    BROKER_URL=f"redis://{db.address}:6379/0",
                    DATA_DIR=str(folder / host.name / "data"),
                    HOST=host.address,
                    PORT=str(API_PORT),
                    **SETTINGS,
                    **extra,
                )

            api1 = network.hosts["api1"]
            migrate = launch(
                "migrate", api1.command(_python(MIGRATE)), environment(api1), folder
            ).start()
            wait_until(lambda: not migrate.running, 60, what="migrations")
            assert migrate.stop() == 0, migrate.log_tail()
            for name, command in plan.items():
                host = network.hosts[name]
                extra = (
                    {"TASK_RUN_SECONDS": HIGH_ATTEMPT_SECONDS} if name.startswith("high") else {}
                )
                argv = host.command(_python(commands[command]))
                processes[name] = launch(name, argv, environment(host, **extra), folder).start()
            clients = [
                httpx.Client(base_url=f"http://{network.hosts[api].address}:{API_PORT}", timeout=10)
                for api in ("api1", "api2")
            ]
            machines = Machines(network.hosts, processes, postgres, clients)
            for name in plan:
                if name.startswith("api"):
                    wait_until(lambda n=name: _answers(network.hosts[n]), 90, interval=0.2)
                else:
                    ready = DISPATCHER_READY if name in DISPATCHER_HOSTS else WORKER_READY
                    processes[name].wait_for_output(ready, timeout=90)
            yield machines
        finally:
            for client in clients:
                client.close()
            for process in processes.values():  # all at once: a worker takes a moment to stop
                process.signal_group(signal.SIGTERM)
            for process in processes.values():
                process.stop()
            redis.stop()
            postgres.stop()


def _python(argv: list[str]) -> list[str]:
    """A Procfile command ("python -m ...") run by the interpreter running the tests."""
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def test_the_seed_flow_across_hosts(machines: Machines) -> None:
    """Create, watch, batch, re-prioritise, cancel, list, fail and retry: each request to the
    next API host in turn, each attempt on a worker host, each delayed task published by a
    dispatcher host."""
    # The low host fails every attempt for a while; its restart overlaps the first steps.
    machines.start("low", wait=False, TASK_FAILURE_RATE="1")
    single = machines.create(10, 20, priority=1)
    done = machines.wait_for(single["id"])
    assert (done["status"], done["result"], done["attempts"]) == ("success", 30, 1)

    response = machines.client().post(
        "/api/v1/tasks/batch", json={"pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "priority": 2}
    )
    assert response.status_code == 201, response.text
    batch = machines.wait_for(response.json()["id"])
    assert (batch["status"], batch["results"], batch["attempts"]) == ("success", [3, 7], 1)

    moved = machines.create(2, 3, priority=3)
    changed = machines.client().put(f"/api/v1/tasks/{moved['id']}", json={"priority": 1})
    assert changed.status_code == 200 and changed.json()["priority"] == 1, changed.text
    assert machines.wait_for(moved["id"])["result"] == 5

    doomed = machines.create(4, 5, priority=3)
    cancelled = machines.client().post(f"/api/v1/tasks/{doomed['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    try:
        failing = machines.create(20, 22, priority=3)
        failed = machines.wait_for(failing["id"], timeout=60)
        assert (failed["status"], failed["attempts"]) == ("failed", 3), failed
        assert "injected fault" in failed["error_message"]
    finally:
        machines.start("low", wait=False, TASK_FAILURE_RATE="0")
    retried = machines.client().post(f"/api/v1/tasks/{failing['id']}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued", retried.text
    again = machines.wait_for(failing["id"], timeout=60)
    assert (again["status"], again["result"], again["attempts"]) == ("success", 42, 1)

    # The low delay has long passed: the cancelled task never ran.
    assert machines.task(doomed["id"])["status"] == "cancelled"
    assert machines.task(doomed["id"])["attempts"] == 0
    for client in machines.clients:  # both API hosts list the same store
        listed = client.get("/api/v1/tasks", params={"status": "cancelled"}).json()
        assert [task["id"] for task in listed["items"]] == [doomed["id"]]


def test_a_dispatcher_host_killed_while_tasks_fall_due_loses_and_doubles_nothing(
    machines: Machines,
) -> None:
    created = []
    for number in range(60):
        a, b = random.randint(-(2**62), 2**62), number
        created.append((machines.create(a, b, priority=2 + number % 2), a + b))
        time.sleep(0.03)  # due times spread over a few seconds: the kill lands among them
    first = created[0][0]["id"]
    wait_until(lambda: machines.task(first)["status"] == "success", 10, what="first task ran")
    machines.processes["disp1"].kill()
    waiting = [t["id"] for t, _ in created if machines.task(t["id"])["status"] == "queued"]
    assert waiting, "every task had run before the kill: it proved nothing"

    try:
        finished = [machines.wait_for(task["id"]) for task, _ in created]
        for (_, total), done in zip(created, finished, strict=True):
            assert (done["status"], done["result"], done["attempts"]) == ("success", total, 1)
        # A duplicate message still on its way would be dropped by its claim; a second outcome
        # would change `finished_at`. Longer than a lease, so a late one would have landed.
        time.sleep(LEASE + 1)
        settled = [machines.task(task["id"]) for task, _ in created]
        assert settled == finished
    except (AssertionError, TimeoutError) as error:
        raise AssertionError(f"{error}\n{machines.logs()}") from None
    finally:
        machines.start("disp1", wait=False)


def test_a_worker_host_that_vanishes_has_its_task_run_elsewhere_after_the_lease(
    machines: Machines,
) -> None:
    # Each priority-1 host runs one attempt at a time and holds it a second: two tasks created
    # together are running at once, one on each host.
    pair = [machines.create(40, 2, priority=1), machines.create(50, 3, priority=1)]
    ids = [task["id"] for task in pair]
    wait_until(
        lambda: all(machines.task(i)["status"] == "running" for i in ids), 5, what="both running"
    )
    machines.hosts["high1"].power_off()
    try:
        done = [machines.wait_for(i, timeout=LEASE * 5) for i in ids]
        assert [(t["status"], t["result"]) for t in done] == [("success", 42), ("success", 53)]
        # The attempt cut short is the one run again (once); the other ran once.
        assert sorted(t["attempts"] for t in done) == [1, 2], done
        survivor = machines.processes["high2"]
        for task_id in ids:
            assert any("success" in line for line in executions(survivor, task_id)), task_id
        time.sleep(LEASE + 1)
        assert [machines.task(i) for i in ids] == done
    except (AssertionError, TimeoutError) as error:
        raise AssertionError(f"{error}\n{machines.logs()}") from None
    finally:
        machines.hosts["high1"].power_on()  # the host comes back
        machines.start("high1", wait=False)

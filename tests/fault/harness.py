"""One system per scenario, on a PostgreSQL and a redis-server of its own, and the load that
creates tasks around a fault.

The processes are the Procfile's, started as tests/system/harness.py starts them, with short
leases and polls so that each fault is noticed and repaired within seconds."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from tests.commands import MIGRATE, procfile
from tests.fault.ledger import Ledger, Verdict
from tests.fault.servers import OwnPostgres, own_postgres
from tests.integration.celery_stack import OwnRedisServer
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import RunningSystem, base_environment, launch

# Short enough that every repair happens within seconds; the attempt takes a moment, so that a
# fault finds attempts in flight and a backlog on the queues.
FAULT_SETTINGS = {
    "LEASE_SECONDS": "3",
    "LOST_MESSAGE_AFTER_SECONDS": "1",
    "DISPATCHER_POLL_SECONDS": "0.05",
    "DELAY_MEDIUM_SECONDS": "1",
    "DELAY_LOW_SECONDS": "2",
    "TASK_RUN_SECONDS": "0.05",
    "WORKER_CONCURRENCY": "1",
    "API_WORKERS": "1",
    "LOG_LEVEL": "INFO",
}
CLIENT_TIMEOUT = httpx.Timeout(5.0, connect=1.0)
RESULTS_DIR = Path(__file__).parent / ".results"


class FaultSystem:
    """The running system plus the servers under it, each one the scenario may break."""

    def __init__(
        self, system: RunningSystem, postgres: OwnPostgres, redis_server: OwnRedisServer
    ) -> None:
        self.system = system
        self.postgres = postgres
        self.redis_server = redis_server
        self.processes = system.processes

    @property
    def database_url(self) -> str:
        return self.postgres.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.system.base_url, timeout=CLIENT_TIMEOUT)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url, socket_timeout=5)

    def restart(self, name: str) -> None:
        """Start a process again (after a kill) and wait until it is ready."""
        process = self.processes[name]
        process.start()
        ready = r"ready\." if name.startswith("worker") else r"dispatcher running"
        if name.startswith("api"):
            wait_until(lambda: self._answers(), 30, interval=0.1, what="the API answers")
        else:
            process.wait_for_output(ready, timeout=30)

    def _answers(self) -> bool:
        try:
            with httpx.Client(base_url=self.system.base_url, timeout=1.0) as client:
                return client.get("/openapi.json").status_code == 200
        except httpx.TransportError:
            return False


@contextmanager
def fault_system(
    log_dir: Path, *, extra: dict[str, str] | None = None, **overrides: str
) -> Iterator[FaultSystem]:
    """Migrations, then every Procfile process (plus `extra`: name -> the Procfile entry it
    copies, e.g. a second high worker), on its own PostgreSQL and redis-server."""
    redis_server = OwnRedisServer(log_dir)
    with own_postgres() as postgres:
        redis_server.start()
        try:
            port = free_port()
            env = base_environment(
                DATABASE_URL=postgres.url,
                BROKER_URL=redis_server.url,
                PORT=str(port),
                DATA_DIR=str(log_dir / "data"),
                **{**FAULT_SETTINGS, **overrides},
            )
            migrate = launch("migrate", MIGRATE, env, log_dir).start()
            wait_until(lambda: not migrate.running, 60, what="migrations")
            assert migrate.stop() == 0, migrate.log_tail()
            commands = procfile()
            commands |= {name: commands[copied] for name, copied in (extra or {}).items()}
            processes = {name: launch(name, argv, env, log_dir) for name, argv in commands.items()}
            system = RunningSystem(port, processes)
            try:
                for process in processes.values():
                    process.start()
                system.wait_healthy()
                yield FaultSystem(system, postgres, redis_server)
            finally:
                system.stop()
        finally:
            redis_server.stop()


class Load:
    """`clients` threads creating `total` tasks between them, a few milliseconds apart, at
    priorities cycling through `priorities`; every request goes into the ledger. A client that
    gets no answer moves on to its next task (no retry: without an Idempotency-Key a retry
    could create the task twice)."""

    def __init__(
        self,
        system: FaultSystem,
        ledger: Ledger,
        *,
        total: int = 120,
        clients: int = 4,
        pause: float = 0.1,
        priorities: tuple[int, ...] = (1, 2, 3),
    ) -> None:
        self._system = system
        self._ledger = ledger
        self._pause = pause
        self._numbers = iter(range(total))
        self._lock = threading.Lock()
        self._priorities = itertools.cycle(priorities)
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def _next(self) -> tuple[int, int] | None:
        with self._lock:
            number = next(self._numbers, None)
            return None if number is None else (number, next(self._priorities))

    def _client(self) -> None:
        with self._system.client() as client:
            while (item := self._next()) is not None:
                number, priority = item
                created = self._ledger.create(
                    client, number, random.randint(-(2**62), 2**62), priority
                )
                # Like a real client, back off a little when the service is unavailable.
                time.sleep(self._pause if created.status not in (None, 503) else 0.3)

    def wait_accepted(self, count: int, timeout: float = 30.0) -> None:
        wait_until(lambda: len(self._ledger.accepted()) >= count, timeout, what=f"{count} 201s")

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float = 120.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
        assert not self.running, "the load's clients did not finish"


def repeat_during(load: Load, every: float, action: Callable[[int], None], rounds: int) -> None:
    """Call action(round) every `every` seconds while the load runs, and at least `rounds`
    times (a slow machine may finish the load first)."""
    done = 0
    while load.running or done < rounds:
        time.sleep(every)
        action(done)
        done += 1


def pool_children(worker: ManagedProcess) -> list[int]:
    """The pids of a Celery worker's pool processes (the children of its main process)."""
    found = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def duplicate_messages(client: redis.Redis, queues: tuple[str, ...]) -> int:
    """Copies of messages, as Redis may hand a message over twice:

    - each message waiting on a queue (kombu's Redis transport keeps a queue as a list; the
      consumer BRPOPs its tail) is LPUSHed again, so its copy comes after the queue's backlog;
    - each message a worker holds unacknowledged (kombu keeps `[message, exchange, routing
      key]` in the `unacked` hash by delivery tag) is RPUSHed back onto its queue, so the copy
      is delivered at once, while the original may still be running: what a visibility
      timeout that ran out would do.
    Returns how many copies were pushed."""
    copies = 0
    for queue in queues:
        waiting = client.lrange(queue, 0, -1)
        if waiting:
            copies += len(waiting)
            client.lpush(queue, *waiting)
    for raw in client.hvals("unacked"):
        message, _exchange, routing_key = json.loads(raw)
        if routing_key in queues:
            client.rpush(routing_key, json.dumps(message))
            copies += 1
    return copies


def save_result(verdict: Verdict, slug: str) -> None:
    """One JSON per scenario; the session writes the table from them (see conftest.py)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{slug}.json").write_text(json.dumps(verdict.as_json(), indent=2))


def conclude(verdict: Verdict, slug: str) -> None:
    save_result(verdict, slug)
    assert verdict.ok, f"{verdict.fault}:\n" + "\n".join(verdict.problems[:20])

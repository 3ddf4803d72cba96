"""What the Celery integration tests share: a Redis database and a PostgreSQL database of their
own, workers and a dispatcher started as subprocesses exactly as a user starts them, and the use
cases (built from a Container on the same store and broker) to create and observe tasks."""

from __future__ import annotations

import fcntl
import os
import re
import signal
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
from dependency_injector import providers

from application.use_cases import CreateTaskRequest
from domain.priority import Priority
from domain.task import Task, TaskStatus
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.integration.databases import PostgresDatabases, connect_admin
from tests.processes import ManagedProcess, free_port, python_module, wait_until

REDIS_HOST = "127.0.0.1:6379"
# Database 0 is everyone's; these are the Celery tests' own, each held by one test at a time.
TEST_REDIS_DATABASES = range(9, 16)
LOCK_DIR = Path("/tmp")

# Fast recovery for tests. The start delays stay at their production values (5 s and 10 s).
TEST_SETTINGS = {
    "DISPATCHER_POLL_SECONDS": "0.05",
    "LEASE_SECONDS": "10",
    "LOST_MESSAGE_AFTER_SECONDS": "3",
    "RETRY_BACKOFF_BASE_SECONDS": "0.05",
    "RETRY_BACKOFF_CAP_SECONDS": "0.5",
    "WORKER_CONCURRENCY": "2",
    "LOG_LEVEL": "INFO",
}

FINISHED = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})
WORKER_READY = r"ready\."
DISPATCHER_READY = r"dispatcher running"


@contextmanager
def redis_database() -> Iterator[str]:
    """The URL of a Redis database number no other test holds, flushed before and after."""
    for number in TEST_REDIS_DATABASES:
        lock = (LOCK_DIR / f"taskman-tests-redis-db-{number}.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        url = f"redis://{REDIS_HOST}/{number}"
        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
            yield url
        finally:
            client.flushdb()
            client.close()
            lock.close()  # releases the lock
        return
    raise RuntimeError(f"every test Redis database {list(TEST_REDIS_DATABASES)} is in use")


@contextmanager
def postgres_database() -> Iterator[str]:
    databases = PostgresDatabases(connect_admin())
    try:
        yield databases.create()
    finally:
        databases.drop_all()


class OwnRedisServer:
    """A redis-server of the test's own, on a free port: one a test may stop and start again
    without touching anybody else's Redis."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        self.process = ManagedProcess(
            f"redis-{self.port}",
            [*argv, "--save", "", "--appendonly", "no"],
            env=os.environ,
            log_path=log_dir / f"redis-{self.port}.log",
        )

    def start(self) -> None:
        self.process.start().wait_for_output(r"Ready to accept connections")

    def stop(self) -> None:
        self.process.stop()


def clean_environment() -> dict[str, str]:
    """The test process's environment without any taskman setting it may carry."""
    settings = {name.upper() for name in Settings.model_fields}
    return {key: value for key, value in os.environ.items() if key.upper() not in settings}


class CeleryStack:
    """One system under test: its store, its broker, and the processes started on them."""

    def __init__(self, database_url: str, broker_url: str, log_dir: Path, **settings: str) -> None:
        self.database_url = database_url
        self.broker_url = broker_url
        self.log_dir = log_dir
        self.settings = {
            **TEST_SETTINGS,
            **settings,
            "DATABASE_URL": database_url,
            "BROKER_URL": broker_url,
            "DATA_DIR": str(log_dir / "data"),
        }
        self.processes: list[ManagedProcess] = []
        self.container = Container()
        # Exactly the subprocesses' settings: validated from the same strings, no environment.
        validated = Settings.model_validate({k.lower(): v for k, v in self.settings.items()})
        self.container.settings.override(providers.Object(validated))

    # ----- processes ------------------------------------------------------------------------

    def process(self, name: str, argv: list[str], **env: str) -> ManagedProcess:
        taken = {process.name for process in self.processes}
        unique = next(n for n in (name, *(f"{name}-{i}" for i in range(2, 99))) if n not in taken)
        process = ManagedProcess(
            unique,
            argv,
            env={**clean_environment(), **self.settings, **env},
            log_path=self.log_dir / f"{name}.log",
        )
        self.processes.append(process)
        return process

    def worker(self, queue: str, *, name: str | None = None, **env: str) -> ManagedProcess:
        """`python -m entrypoints.worker --queue <queue>`, started and ready."""
        (worker,) = self.workers(queue, name=name, **env)
        return worker

    def workers(self, *queues: str, name: str | None = None, **env: str) -> list[ManagedProcess]:
        """One worker per queue, started side by side, all ready."""
        started = [
            self.process(
                name or f"worker-{queue}",
                python_module("entrypoints.worker", "--queue", queue),
                **env,
            ).start()
            for queue in queues
        ]
        for worker in started:
            worker.wait_for_output(WORKER_READY)
        return started

    def dispatcher(self, **env: str) -> ManagedProcess:
        """`python -m entrypoints.dispatcher`, started and ready."""
        dispatcher = self.process("dispatcher", python_module("entrypoints.dispatcher"), **env)
        dispatcher.start().wait_for_output(DISPATCHER_READY)
        return dispatcher

    def stop_all(self) -> None:
        # Ask all at once: a Celery worker takes a moment to shut down warm.
        for process in self.processes:
            if process.running:
                process.signal_group(signal.SIGTERM)
        for process in reversed(self.processes):
            process.stop()

    # ----- tasks ----------------------------------------------------------------------------

    def create(self, priority: Priority, a: int = 1, b: int = 2) -> Task:
        return self.container.create_task().execute(CreateTaskRequest(a=a, b=b, priority=priority))

    def task(self, task_id: int) -> Task:
        uow = self.container.uow()
        with uow:
            task = uow.tasks.get(task_id)
        assert task is not None, f"task {task_id} is not stored"
        return task

    def tasks(self, task_ids: Iterable[int]) -> list[Task]:
        uow = self.container.uow()
        with uow:
            found = [uow.tasks.get(task_id) for task_id in task_ids]
        assert all(task is not None for task in found)
        return [task for task in found if task is not None]

    def wait_finished(self, task_ids: Iterable[int], timeout: float) -> list[Task]:
        ids = list(task_ids)

        def all_finished() -> list[Task] | None:
            tasks = self.tasks(ids)
            return tasks if all(task.status in FINISHED for task in tasks) else None

        try:
            return wait_until(all_finished, timeout, interval=0.1, what="all tasks finished")
        except TimeoutError:
            stuck = [t for t in self.tasks(ids) if t.status not in FINISHED]
            raise AssertionError(
                f"{len(stuck)} task(s) not finished after {timeout} s, e.g. {stuck[:3]}\n"
                + "\n".join(f"--- {p.name}:\n{p.log_tail(15)}" for p in self.processes)
            ) from None

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url)


def _worker_lines(worker: ManagedProcess, event: str, task_id: int) -> list[str]:
    # The worker's structured lines (LOG_FORMAT=console): `<time> [info] <event> [taskman.worker]
    # key=value ...`, keys in alphabetical order.
    pattern = re.compile(rf"^.*\] {event}\s+\[taskman\.worker\].*\btask_id={task_id}\b.*$", re.M)
    return pattern.findall(worker.log_text())


def executions(worker: ManagedProcess, task_id: int) -> list[str]:
    """The worker's log lines about attempts of that task (not about dropped messages)."""
    return _worker_lines(worker, "attempt", task_id)


def dropped(worker: ManagedProcess, task_id: int, dispatch_no: int) -> list[str]:
    """The worker's log lines about messages of that task and dispatch it dropped (stale or
    duplicate)."""
    lines = _worker_lines(worker, "message dropped", task_id)
    return [line for line in lines if f"dispatch_no={dispatch_no} " in line]


@contextmanager
def celery_stack(
    log_dir: Path, broker_url: str | None = None, **settings: str
) -> Iterator[CeleryStack]:
    """A migrated PostgreSQL database and, unless `broker_url` is given, a Redis database."""
    with postgres_database() as database_url, ExitStack() as contexts:
        broker_url = broker_url or contexts.enter_context(redis_database())
        stack = CeleryStack(database_url, broker_url, log_dir, **settings)
        try:
            yield stack
        finally:
            stack.stop_all()
            stack.container.engine().dispose()

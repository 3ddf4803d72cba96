"""Metrics and logs of the running system (issue 13): every process started on its own, as
compose starts them, on PostgreSQL and a redis-server of the test's own. The metrics scraped
from the API, each worker pool and the dispatcher are checked against the tasks table; the JSON
log lines are parsed and checked for their fields and for secrets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, make_url, text

from tests.commands import MIGRATE, procfile
from tests.processes import ManagedProcess, free_port, wait_until
from tests.system.harness import (
    RunningSystem,
    base_environment,
    launch,
    own_redis,
    postgres_database,
)

pytestmark = pytest.mark.system

# PostgreSQL here trusts local connections and ignores it: it only has to reach every process.
SECRET = "s3cret-pw-never-logged"
WORKERS = {"worker-high": "1", "worker-medium": "2", "worker-low": "3"}
TASKS_PER_PRIORITY = 12


@dataclass
class Observed:
    system: RunningSystem
    metrics_ports: dict[str, int]
    database_url: str
    processes: dict[str, ManagedProcess]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    log_dir = tmp_path_factory.mktemp("logs")
    with postgres_database() as url, own_redis(log_dir) as (_, redis_port):
        url = make_url(url).set(password=SECRET).render_as_string(hide_password=False)
        port = free_port()
        env = base_environment(
            DATABASE_URL=url,
            BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
            PORT=str(port),
            LOG_FORMAT="json",
            ACCESS_LOG="true",
            API_WORKERS="2",  # two processes: their metrics are shared through files
            WORKER_CONCURRENCY="2",  # a pool of two forked processes per priority
            DELAY_MEDIUM_SECONDS="0.5",
            DELAY_LOW_SECONDS="1",
            TASK_FAILURE_RATE="0.3",  # some attempts are retried, some tasks fail
        )
        migrate = launch("migrate", MIGRATE, env, log_dir).start()
        wait_until(lambda: not migrate.running, 60, what="migrations")
        assert migrate.stop() == 0, migrate.log_tail()
        ports = {name: free_port() for name in [*WORKERS, "dispatcher"]}
        processes = {
            name: launch(
                name,
                argv,
                {**env, **({"METRICS_PORT": str(ports[name])} if name in ports else {})},
                log_dir,
            )
            for name, argv in procfile().items()
        }
        system = RunningSystem(port, processes)
        try:
            for process in processes.values():
                process.start()
            system.wait_healthy()
            yield Observed(system, ports, url, processes)
        finally:
            system.stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page: (name, sorted labels) -> value."""
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def test_metrics_of_every_process_agree_with_the_tasks_table_and_logs_carry_the_attempts(
    observed: Observed,
) -> None:
    system, api_port = observed.system, observed.system.port
    ids = [
        system.create(i, i, priority)["id"]
        for i in range(TASKS_PER_PRIORITY)
        for priority in (1, 2, 3)
    ]
    while_running = scrape(api_port)  # answers while tasks run, every state gauge present
    assert ("taskman_tasks", (("priority", "3"), ("status", "queued"))) in while_running
    for task_id in ids:
        system.wait_for(task_id, {"success", "failed"}, timeout=60)

    api = scrape(api_port)
    for priority, created in rows(
        observed.database_url, "SELECT priority, count(*) FROM tasks GROUP BY priority"
    ):
        assert (
            value(api, "taskman_tasks_created_total", priority=str(priority), type="single")
            == created
        )
    for status in ("queued", "running"):
        for priority in "123":
            assert value(api, "taskman_tasks", status=status, priority=priority) == 0
    assert value(
        api, "taskman_http_requests_total", route="/api/v1/tasks", method="POST", status="201"
    ) == len(ids)
    assert value(api, "taskman_queue_consumers", queue="high") == 1  # one pool (node)

    table = {
        (str(priority), status): (count, attempts)
        for priority, status, count, attempts in rows(
            observed.database_url,
            "SELECT priority, status, count(*), sum(attempts) FROM tasks GROUP BY priority, status",
        )
    }
    outcomes: Counter[str] = Counter()
    for name, priority in WORKERS.items():
        worker = scrape(observed.metrics_ports[name])
        successes = table.get((priority, "success"), (0, 0))[0]
        failures = table.get((priority, "failed"), (0, 0))[0]
        attempts = sum(a for (p, _), (_, a) in table.items() if p == priority)
        counted = {
            outcome: value(
                worker, "taskman_task_attempts_total", priority=priority, outcome=outcome
            )
            for outcome in ("success", "retried", "failed", "lost")
        }
        outcomes.update({k: int(v) for k, v in counted.items()})
        assert counted["success"] == successes
        assert counted["failed"] == failures
        assert sum(counted.values()) == attempts  # each attempt counted once, in some process
        lateness = value(worker, "taskman_task_start_lateness_seconds_count", priority=priority)
        assert lateness == attempts
        # Every attempt started at or after its start time; the 60 s bucket holds them all.
        assert (
            value(
                worker, "taskman_task_start_lateness_seconds_bucket", priority=priority, le="60.0"
            )
            == attempts
        )
    assert outcomes["retried"] > 0  # the injected faults were seen as retries

    dispatcher = scrape(observed.metrics_ports["dispatcher"])
    delayed = sum(c for (p, _), (c, _) in table.items() if p in "23")
    assert value(dispatcher, "taskman_dispatcher_published_total") >= delayed
    assert value(dispatcher, "taskman_dispatcher_round_seconds_count") > 0

    check_logs(observed, sum(a for _, a in table.values()))


def check_logs(observed: Observed, attempts: int) -> None:
    attempt_lines: list[dict[str, object]] = []
    request_lines: list[dict[str, object]] = []
    for name, process in observed.processes.items():
        text_ = process.log_text()
        assert SECRET not in text_, f"{name} logged the database password"
        for line in text_.splitlines():
            if not line.startswith("{"):
                continue  # Celery's start-up banner is printed, not logged
            record = json.loads(line)
            assert {"event", "level", "timestamp"} <= record.keys(), line
            # One line per request, taskman's: never uvicorn's own beside it.
            assert record.get("logger") != "uvicorn.access", line
            if record["event"] == "attempt":
                attempt_lines.append(record)
            elif record["event"] == "request":
                request_lines.append(record)
    assert len(attempt_lines) == attempts  # one line per attempt, not three
    for record in attempt_lines:
        assert {"task_id", "dispatch_no", "priority", "attempt", "outcome"} <= record.keys()
        assert isinstance(record["duration_ms"], float) and isinstance(record["lateness_ms"], float)
    assert any(
        r["route"] == "/api/v1/tasks/{task_id}" and r["status"] == 200 and "duration_ms" in r
        for r in request_lines
    )

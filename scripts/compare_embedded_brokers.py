"""Which broker transport for the embedded default (no BROKER_URL)? Measures both candidates.

    .venv/bin/python -m scripts.compare_embedded_brokers

For each transport, on an embedded SQLite store: starts the Procfile's processes, creates
priority-1 tasks one after another and reports create->finish latency (p50, p99) and throughput
(first create to last finish), and the time to publish 500 messages in one call."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from adapters.broker import CeleryTaskQueue, create_celery_app
from application.ports import Dispatch
from domain.priority import Priority
from tests.commands import MIGRATE, procfile
from tests.processes import free_port, wait_until
from tests.system.harness import RunningSystem, base_environment, launch

TASKS = 200


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def measure(name: str, broker_url: str, root: Path) -> dict[str, float]:
    logs = root / "logs"
    env = base_environment(
        PORT=str(port := free_port()),
        DATA_DIR=str(root / "var"),
        BROKER_URL=broker_url,
        DATABASE_URL=f"sqlite:///{root / 'var' / 'taskman.db'}",
        WORKER_CONCURRENCY="1",
        LOG_LEVEL="WARNING",
    )
    migrate = launch("migrate", MIGRATE, env, logs).start()
    wait_until(lambda: not migrate.running, 60)
    processes = {n: launch(n, argv, env, logs) for n, argv in procfile().items()}
    system = RunningSystem(port, processes)
    try:
        for process in processes.values():
            process.start()
        system.wait_healthy(90)
        ids = [system.create(i, i)["id"] for i in range(TASKS)]
        done = [system.wait_for(i, timeout=120) for i in ids]
    finally:
        system.stop()
    latencies = [
        (
            datetime.fromisoformat(t["finished_at"]) - datetime.fromisoformat(t["created_at"])
        ).total_seconds()
        * 1000
        for t in done
    ]
    span = max(datetime.fromisoformat(t["finished_at"]) for t in done) - min(
        datetime.fromisoformat(t["created_at"]) for t in done
    )
    queue = CeleryTaskQueue(create_celery_app(broker_url, visibility_timeout_seconds=60))
    started = time.perf_counter()
    queue.publish([Dispatch(i, 1, Priority.LOW) for i in range(500)])
    publish_ms = (time.perf_counter() - started) * 1000
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 99),
        "tasks_per_s": TASKS / span.total_seconds(),
        "publish_500_ms": publish_ms,
        "all_success": float(all(t["status"] == "success" for t in done)),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        candidates = {
            "sqla": f"sqla+sqlite:///{root / 'sqla' / 'var' / 'broker.db'}",
            "filesystem": f"filesystem://localhost{root / 'filesystem' / 'var' / 'broker'}",
        }
        for name, url in candidates.items():
            (root / name / "var").mkdir(parents=True, exist_ok=True)
            figures = measure(name, url, root / name)
            print(f"{name:12} " + "  ".join(f"{k}={v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()

"""The ceilings, measured first while the system is idle: pgbench inserts, bare Celery."""

from __future__ import annotations

import sys
from typing import Any

from bench.baselines import bare_celery, pgbench
from bench.phases.common import say
from bench.plan import Plan
from bench.system import SystemUnderTest
from tests.processes import ManagedProcess

BARE_CELERY_DB = 1  # the system's redis-server, another database than taskman's


def pgbench_inserts(sut: SystemUnderTest, plan: Plan) -> dict[str, Any]:
    pgbench.prepare(sut.libpq_url)
    try:
        runs = {}
        for clients in plan.concurrencies:
            run = pgbench.run(sut.libpq_url, clients=clients, seconds=plan.rate_seconds)
            p99 = run.p99_ms or 0.0
            say(f"pgbench INSERT, {clients:>2} clients: {run.tps:6.0f} tps, p99 {p99:.1f} ms")
            runs[str(clients)] = run
    finally:
        pgbench.drop(sut.libpq_url)
    return {
        "pgbench_insert_tps": {c: round(run.tps, 1) for c, run in runs.items()},
        "pgbench_insert_p50_ms": {c: _round(run.p50_ms) for c, run in runs.items()},
        "pgbench_insert_p99_ms": {c: _round(run.p99_ms) for c, run in runs.items()},
    }


def bare_celery_throughput(sut: SystemUnderTest, plan: Plan) -> dict[str, Any]:
    broker_url = sut.redis_url.rsplit("/", 1)[0] + f"/{BARE_CELERY_DB}"
    concurrency = sut.setting("WORKER_CONCURRENCY")
    worker = ManagedProcess(
        "bare-celery",
        [
            sys.executable,
            "-m",
            "bench.baselines.bare_celery",
            "worker",
            broker_url,
            f"--concurrency={concurrency}",
            f"--loglevel={sut.setting('LOG_LEVEL')}",
        ],
        # Celery's command line reads BROKER_URL from the environment, over the app's own.
        env={**sut.env, "BROKER_URL": broker_url},
        log_path=sut.log_dir / "bare-celery.log",
    )
    worker.start()
    try:
        result = bare_celery.measure(broker_url, plan.e2e_tasks)
    finally:
        worker.stop()
    say(
        f"bare Celery, {plan.e2e_tasks} tasks at concurrency {concurrency}: "
        f"{result['per_s']:.0f} tasks/s (published in {result['publish_s']:.1f} s)"
    )
    return {"bare_celery_tasks_per_s": round(result["per_s"], 1), "bare_celery": result}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)

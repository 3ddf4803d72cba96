"""`python -m bench [--plan full|ab|quick]`: start taskman on PostgreSQL + Redis, measure, report.

Phases, in order: the baselines (pgbench INSERT, bare Celery) while the system idles; priority-1
latency on the idle system; the create rate at each concurrency and the backlog drain; 10,000
priority-1 tasks end to end, with task events on then off, with metrics off then on again, with
`make run`'s logging (INFO) then WARNING (their costs), and with messages of at most 1, 10 and
100 tasks; the delay lag of priorities 2 and 3; the 100,000-pair batch; and last the priority-3
flood with priority-1 probes (last, because it leaves work behind). Then, that system stopped,
`make run` started as a user starts it and driven by wrk at 32 and 64 connections."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import chart, history_cost, report
from bench.loadgen import wrk
from bench.phases import baselines, batch, costs, latency, make_run, throughput
from bench.plan import PLANS
from bench.system import (
    BENCH_LOG_LEVEL,
    differences_from_make_run,
    production_settings,
    running_system,
)
from bench.timings import Timings

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plan",
        choices=sorted(PLANS),
        default="full",
        help="full: issue 7's sizes; ab: before/after one change; quick: development",
    )
    args = parser.parse_args(argv)
    plan = PLANS[args.plan]
    full = args.plan == "full"
    wrk_path = wrk.wrk_path()
    figures: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "plan": args.plan,
        "machine": {"cpus": _cpus(), "platform": platform.platform()},
        "load_generator": _version(wrk_path),
    }
    started = time.monotonic()
    log_dir = RESULTS / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    figures["differs_from_make_run"] = differences_from_make_run(production_settings())
    for name, values in figures["differs_from_make_run"].items():
        why = _WHY.get(name, "set in the environment")
        print(f"{name}={values['bench']} (make run: {values['make_run']}): {why}", flush=True)
    print(f"starting taskman on PostgreSQL + Redis (logs in {log_dir})", flush=True)
    with running_system(log_dir) as sut:
        figures["settings"] = {
            name: sut.setting(name)
            for name in (
                "API_WORKERS",
                "WORKER_CONCURRENCY",
                "DISPATCHER_POLL_SECONDS",
                "MESSAGE_MAX_TASKS",
                "LOG_LEVEL",
            )
        }
        db = Timings(sut.libpq_url)
        try:
            print("baselines", flush=True)
            figures |= baselines.pgbench_inserts(sut, plan)
            figures |= baselines.bare_celery_throughput(sut, plan)
            print("taskman", flush=True)
            figures |= latency.p1_idle(sut, db, plan)
            figures |= throughput.create_rate(sut, db, plan)
            best = throughput.best_concurrency(figures)
            figures |= throughput.end_to_end(sut, db, plan, best)
            figures |= costs.events_and_metrics(sut, db, plan, best)
            run_cpu_ms = figures["run_cpu_ms_per_task"]
            figures |= costs.logging_at_info(sut, db, run_cpu_ms)
            figures |= history_cost.history_and_streams(sut, db, run_cpu_ms)
            figures |= throughput.message_sizes(sut, db, plan, best)
            figures |= latency.delay_lag(sut, db, plan)
            figures |= batch.big_batch(sut, db, plan)
            figures |= latency.p1_under_flood(sut, db, plan, best)
        finally:
            db.close()
    print("make run, black-box", flush=True)
    figures |= make_run.make_run_under_wrk(log_dir, seconds=plan.make_run_seconds)
    figures["goals"] = report.goals(figures)
    figures["wall_seconds"] = round(time.monotonic() - started, 1)
    name = "latest.json" if full else f"{args.plan}.json"
    report.write_json(figures, RESULTS / name)
    chart.draw(figures, RESULTS / ("chart.png" if full else f"{args.plan}.png"))
    print()
    print(report.render(figures))
    print(f"\n{RESULTS / name} and the chart written in {figures['wall_seconds']:.0f} s")


_WHY = {
    "LOG_LEVEL": f"{BENCH_LOG_LEVEL} in taskman and bare Celery alike, so neither pays a line per "
    "task (at INFO a worker writes one per attempt)",
}


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _version(wrk_path: str | None) -> str:
    if wrk_path is None:
        return "python fallback generator (wrk unavailable)"
    completed = subprocess.run([wrk_path, "--version"], capture_output=True, text=True)
    return (completed.stdout or completed.stderr).split("[")[0].strip() or "wrk"


if __name__ == "__main__":
    main()

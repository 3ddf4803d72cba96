"""Accepting and processing: the create rate at each concurrency, the high pool draining the
backlog that made, and 10,000 priority-1 tasks end to end, with Celery's task events on (the
default) and again with them off, and with messages of one, ten and a hundred tasks at most."""

from __future__ import annotations

import time
from typing import Any

from bench.loadgen import wrk
from bench.phases.common import epoch, say
from bench.plan import Plan
from bench.system import SystemUnderTest
from bench.timings import Timings

HIGH_WORKER = "worker-high"
WORKERS = (HIGH_WORKER, "worker-medium", "worker-low")
WARM_UP_SECONDS = 1


def create_rate(sut: SystemUnderTest, db: Timings, plan: Plan) -> dict[str, Any]:
    """POST /tasks at priority 1 (the whole accept path: insert, then publish) with the
    high-priority workers stopped, so the figure is the API's alone and not shared with the
    workers running what it accepts. The workers then drain the backlog: the processing rate
    with no creation competing for the CPU."""
    floor = db.max_id()
    sut.process(HIGH_WORKER).stop()
    rates: dict[str, wrk.WrkRun] = {}
    try:
        wrk.run_for(sut.system.base_url, connections=16, seconds=WARM_UP_SECONDS, priority=1)
        for connections in plan.concurrencies:
            run = wrk.run_for(
                sut.system.base_url,
                connections=connections,
                seconds=plan.rate_seconds,
                priority=1,
            )
            rates[str(connections)] = run
            say(
                f"create at {connections:>2} connections: {run.per_s:6.0f} req/s, "
                f"p50 {run.latency_ms.get('p50', 0):.1f} ms, p99 {run.latency_ms.get('p99', 0):.1f}"
                f" ms, {run.errors} errors"
            )
    finally:
        sut.process(HIGH_WORKER).start()
    drained = db.wait_finished_after(floor, timeout=600)
    assert drained.first_started is not None and drained.last_finished is not None
    drain_s = epoch(drained.last_finished) - epoch(drained.first_started)
    say(f"high pool drained {drained.total} tasks in {drain_s:.1f} s")
    return {
        "create_per_s": {c: round(run.per_s, 1) for c, run in rates.items()},
        "create_p50_ms": {c: round(run.latency_ms.get("p50", 0), 2) for c, run in rates.items()},
        "create_p99_ms": {c: round(run.latency_ms.get("p99", 0), 2) for c, run in rates.items()},
        "create_errors": {c: run.errors for c, run in rates.items()},
        "drain_tasks_per_s": round(drained.total / drain_s, 1),
        "drain": {
            "tasks": drained.total,
            "seconds": round(drain_s, 2),
            "not_success": drained.total - drained.succeeded,
        },
    }


def best_concurrency(figures: dict[str, Any]) -> int:
    rates: dict[str, float] = figures["create_per_s"]
    return int(max(rates, key=lambda c: rates[c]))


def end_to_end(sut: SystemUnderTest, db: Timings, plan: Plan, connections: int) -> dict[str, Any]:
    """From the first request to the last of the tasks in success, everything running."""
    floor = db.max_id()
    start = time.time()
    wrk.run_count(sut.system.base_url, connections=connections, count=plan.e2e_tasks, priority=1)
    done = db.wait_finished_after(floor, timeout=600)
    assert done.last_finished is not None
    seconds = epoch(done.last_finished) - start
    rate = done.succeeded / seconds
    say(
        f"end to end: {done.succeeded} priority-1 tasks in success in {seconds:.1f} s "
        f"({rate:.0f} tasks/s) at {connections} connections"
    )
    return {
        "e2e_tasks_per_s": round(rate, 1),
        "e2e": {
            "tasks": done.total,
            "succeeded": done.succeeded,
            "seconds": round(seconds, 2),
            "connections": connections,
        },
    }


def _wait_ready(sut: SystemUnderTest) -> None:
    deadline = time.monotonic() + 60
    while sut.system.http.get("/api/v1/health/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the restarted workers are not all consuming after 60 s")
        time.sleep(0.2)


MESSAGE_SIZES = (1, 10, 100)


def message_sizes(
    sut: SystemUnderTest, db: Timings, plan: Plan, connections: int
) -> dict[str, Any]:
    """The end-to-end run again with every process restarted with MESSAGE_MAX_TASKS at each of
    MESSAGE_SIZES in turn (issue 14: how batching changes it), the last the system's own setting
    again, so the figures are measured next to each other on the same warm database."""
    names = list(sut.system.processes)
    own = sut.setting("MESSAGE_MAX_TASKS")
    rates: dict[str, float] = {}
    try:
        for size in MESSAGE_SIZES:
            sut.system.restart(*names, MESSAGE_MAX_TASKS=str(size))
            sut.system.wait_healthy()
            _wait_ready(sut)  # every pool consumes
            rates[str(size)] = end_to_end(sut, db, plan, connections)["e2e_tasks_per_s"]
    finally:
        sut.system.restart(*names, MESSAGE_MAX_TASKS=own)
        sut.system.wait_healthy()
    say("end to end by MESSAGE_MAX_TASKS: " + ", ".join(f"{n}: {r}" for n, r in rates.items()))
    return {"e2e_by_message_max_tasks": rates}

"""What an optional feature costs: task events (Flower's and `celery events`' feed),
Prometheus metrics (issue 13's goal: each within 5% of the end-to-end figure without it), and
logging: `make run`'s LOG_LEVEL and LOG_FORMAT (INFO, console lines: one per attempt) against
LOG_LEVEL=WARNING (issue 14's goal: less than a sixth). Task events are off by default (as in
Celery; Flower turns them on while it runs), metrics and INFO logging on. bench/history_cost.py
measures issue 16's (the history triggers, event streams) with the same tools.

One pair of runs says little on a shared machine, where the load of other work can move a rate
by more than the cost sought, and end to end the same setting's CPU per task moved by a quarter
between runs. So each feature is measured where it is paid, in PAIRS pairs of drains of a
backlog (`drains`), the feature off then on, then on then off (ABBA: a drift in the machine's
load between runs hits both sides alike), and judged by its `cost_of_run`: the CPU it adds per
task (median pair) over the whole system's CPU per task end to end at the bench's settings. Every
pair's rates and CPU per task are kept beside the medians."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from celery import Celery

from adapters.broker.app import create_celery_app
from bench.cost import CpuSnapshot, cpu_snapshot, cpu_spent, postgres_pids, tree_pids
from bench.loadgen import wrk
from bench.phases.common import epoch, say
from bench.phases.throughput import HIGH_WORKER, _wait_ready, end_to_end
from bench.plan import Plan
from bench.system import SystemUnderTest
from bench.timings import Timings
from domain.priority import Priority
from entrypoints.settings import Settings

# A drain pair takes about 15 s.
PAIRS = 5
# Enough tasks for a drain of several seconds at either setting, short enough for 2 x PAIRS.
COST_TASKS = 4_000
# End-to-end runs at the bench's settings whose median CPU per task divides each cost.
RUN_CPU_RUNS = 3


def abba(
    what: str, run: Callable[[bool], tuple[float, float]], tasks_per_run: int, pairs: int = PAIRS
) -> dict[str, Any]:
    """`pairs` pairs of runs, the feature off then on, then on then off, ...: `run(on)` gives
    a run's rate (tasks/s) and CPU per task (ms). The medians of the pairs' costs, as
    `summary` gives them."""
    measured = []
    for index in range(pairs):
        order = (False, True) if index % 2 == 0 else (True, False)
        rates: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for on in order:
            side = "on" if on else "off"
            rates[side], cpu[side] = run(on)
        measured.append(pair_of(rates, cpu))
    return summary(what, measured, tasks_per_run)


def pair_of(rates: dict[str, float], cpu: dict[str, float]) -> dict[str, float]:
    """One ABBA pair's figures from each side's rate (tasks/s) and CPU per task (ms)."""
    return {
        "off": rates["off"],
        "on": rates["on"],
        "cost": 1 - rates["on"] / rates["off"],
        "cpu_ms_off": cpu["off"],
        "cpu_ms_on": cpu["on"],
        "cpu_cost": cpu["on"] / cpu["off"] - 1,
    }


def summary(what: str, pairs: list[dict[str, float]], tasks_per_run: int) -> dict[str, Any]:
    """The medians over the pairs of the throughput cost and of the CPU-per-task cost, printed
    with every pair's figures: {"cost", "cpu_cost", "pairs", "tasks_per_run"}."""
    cost = statistics.median(pair["cost"] for pair in pairs)
    cpu_cost = statistics.median(pair["cpu_cost"] for pair in pairs)
    say(
        f"{what}: median cost {cost:+.1%} of end-to-end throughput, {cpu_cost:+.1%} of CPU per "
        f"task, over {len(pairs)} pairs "
        + ", ".join(
            f"(off {p['off']:.0f}/s {p['cpu_ms_off']:.2f} ms, on {p['on']:.0f}/s "
            f"{p['cpu_ms_on']:.2f} ms)"
            for p in pairs
        )
    )
    return {
        "cost": round(cost, 4),
        "cpu_cost": round(cpu_cost, 4),
        "pairs": [{k: round(v, 4) for k, v in pair.items()} for pair in pairs],
        "tasks_per_run": tasks_per_run,
    }


def measured_run(
    sut: SystemUnderTest, db: Timings, plan: Plan, connections: int
) -> tuple[float, float]:
    """One end-to-end run: its rate (tasks/s) and the CPU time per task (ms) of every taskman
    process with its children, and of PostgreSQL. Steadier than the rate, which moved by up to
    20% between runs of one setting here, though not free of the noise: a run slowed by
    contention also burns more CPU per task."""
    before = _system_cpu(sut)
    figures = end_to_end(sut, db, plan, connections)
    spent = cpu_spent(before, _system_cpu(sut))
    return float(figures["e2e_tasks_per_s"]), spent * 1000 / max(figures["e2e"]["succeeded"], 1)


def _system_cpu(sut: SystemUnderTest) -> CpuSnapshot:
    """Every taskman process with its descendants, and PostgreSQL."""
    pids = [pid for p in sut.system.processes.values() if p.running for pid in tree_pids(p.pid)]
    return cpu_snapshot(pids + postgres_pids())


def _value(sut: SystemUnderTest, setting: str) -> str:
    """The system's value of `setting`: its environment's, else the default (booleans as
    "true"/"false")."""
    if setting in sut.env:
        return sut.env[setting]
    default = Settings.model_fields[setting.lower()].default
    return str(default).lower() if isinstance(default, bool) else str(default)


def _restart(sut: SystemUnderTest, processes: tuple[str, ...], setting: str, value: str) -> None:
    sut.system.restart(*processes, **{setting: value})
    sut.system.wait_healthy()  # the API answers again, if it was restarted
    _wait_ready(sut)  # and every pool consumes


def events_and_metrics(
    sut: SystemUnderTest, db: Timings, plan: Plan, connections: int
) -> dict[str, Any]:
    """The cost of task events (the high pool restarted with TASK_EVENTS false and true) and
    of metrics (every process restarted with METRICS_ENABLED false and true), each in ABBA
    pairs of drains (`drains`: the pool's CPU for task events, every process's and
    PostgreSQL's for metrics), and the system's CPU per task end to end at the bench's
    settings, the median of RUN_CPU_RUNS runs, that each cost's `cost_of_run` (and later
    phases') divides:
    {"events_cost": {...}, "metrics_cost": {...}, "run_cpu_ms_per_task": ms}."""
    run_plan = replace(plan, e2e_tasks=min(plan.e2e_tasks, COST_TASKS))
    run_cpu_ms = statistics.median(
        measured_run(sut, db, run_plan, connections)[1] for _ in range(RUN_CPU_RUNS)
    )
    say(f"the system's CPU per task end to end: {run_cpu_ms:.2f} ms (median of {RUN_CPU_RUNS})")
    events = by_drain(sut, db, "TASK_EVENTS", ("false", "true"))
    share_of_run("task events", events, run_cpu_ms)
    every_process = tuple(sut.system.processes)

    def metrics_on(on: bool) -> None:
        _restart(sut, every_process, "METRICS_ENABLED", "true" if on else "false")

    try:
        metrics = drains(sut, db, "METRICS_ENABLED", metrics_on, counted="every process")
    finally:
        _restart(sut, every_process, "METRICS_ENABLED", _value(sut, "METRICS_ENABLED"))
    share_of_run("metrics", metrics, run_cpu_ms)
    return {
        "events_cost": events,
        "metrics_cost": metrics,
        "run_cpu_ms_per_task": round(run_cpu_ms, 4),
    }


def share_of_run(what: str, drained: dict[str, Any], run_cpu_ms: float) -> None:
    """Adds to a `drains` measure its `cost_of_run`: the median pair's added CPU per task over
    `run_cpu_ms`, the whole system's CPU per task end to end (ms)."""
    added_ms = statistics.median(p["cpu_ms_on"] - p["cpu_ms_off"] for p in drained["pairs"])
    drained["run_cpu_ms_per_task"] = round(run_cpu_ms, 4)
    drained["cost_of_run"] = round(added_ms / run_cpu_ms, 4)
    say(
        f"{what}: {added_ms:+.3f} ms of CPU per task (median pair): "
        f"{added_ms / run_cpu_ms:+.1%} of the system's {run_cpu_ms:.2f} ms per task end to end"
    )


def by_drain(
    sut: SystemUnderTest,
    db: Timings,
    setting: str,
    values: tuple[str, str],
    tasks: int = COST_TASKS,
) -> dict[str, Any]:
    """A per-attempt feature's cost to the only process that pays it, the high pool (its Celery
    worker with its pool processes), in ABBA pairs of drains (`drains`): the pool restarted
    with `setting` at `values` (off, then on)."""

    def switch(on: bool) -> None:
        _restart(sut, (HIGH_WORKER,), setting, values[1] if on else values[0])

    try:
        return drains(sut, db, setting, switch, tasks)
    finally:
        _restart(sut, (HIGH_WORKER,), setting, _value(sut, setting))


Counted = Literal["high pool", "PostgreSQL", "every process"]


def drains(
    sut: SystemUnderTest,
    db: Timings,
    what: str,
    switch: Callable[[bool], None],
    tasks: int = COST_TASKS,
    *,
    counted: Counted = "high pool",
) -> dict[str, Any]:
    """A feature's cost in ABBA pairs of drains: `switch(on)` sets it, the high pool stops
    consuming (Celery's `cancel_consumer`), `tasks` priority-1 tasks are queued through the API
    at 64 connections, and the pool drains them (`add_consumer`): the drain's rate, and the CPU
    time per task of what pays the feature: the high pool's from the `add_consumer` to the last
    finish; or PostgreSQL's (the history triggers), or every taskman process's and
    PostgreSQL's (metrics), from the first create to the last finish. A first drain, not
    counted, warms the system.

    Not end to end, where the same setting's CPU per task moved by a quarter between runs (1.9
    to 2.9 ms, `make bench` of 2026-12-01): there the tasks per message follow how far the
    workers lag behind the creates, and so the run's speed. A backlog queued before the drain is
    grouped into messages the same way at either setting, so the work per task is the same; and
    only what pays the feature is counted, not the others' noise."""
    app = create_celery_app(sut.redis_url, visibility_timeout_seconds=60, task_events=False)
    pool = sut.process(HIGH_WORKER)
    queue = Priority.HIGH.queue_name

    def cpu() -> CpuSnapshot:
        if counted == "high pool":
            return cpu_snapshot(tree_pids(pool.pid))
        if counted == "PostgreSQL":
            return cpu_snapshot(postgres_pids())
        return _system_cpu(sut)

    def run(on: bool) -> tuple[float, float]:
        switch(on)
        node = _node(app, queue)
        app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
        floor = db.max_id()
        before = cpu()
        wrk.run_count(sut.system.base_url, connections=64, count=tasks, priority=1)
        if counted == "high pool":
            before = cpu()  # not the idle pool's heartbeats while the API queued
        app.control.add_consumer(queue, destination=[node], reply=True, timeout=5)
        done = db.wait_finished_after(floor, timeout=600)
        spent = cpu_spent(before, cpu())
        assert done.first_started is not None and done.last_finished is not None
        seconds = max(epoch(done.last_finished) - epoch(done.first_started), 1e-3)
        return done.total / seconds, spent * 1000 / max(done.succeeded, 1)

    try:
        run(False)  # a first drain warms what the pairs would otherwise bill to one side
        measured = abba(f"{what}, high pool draining a backlog", run, tasks)
        return {**measured, "cpu_of": counted}
    finally:
        app.close()


def _node(app: Celery, queue: str) -> str:
    """The node name of the one worker consuming `queue` (`high@host`), by Celery's ping."""
    for _ in range(50):
        for reply in app.control.ping(timeout=0.5):
            for node in reply:
                if node.startswith(f"{queue}@"):
                    return node
    raise RuntimeError(f"no worker consuming {queue} answers a ping")


def logging_at_info(sut: SystemUnderTest, db: Timings, run_cpu_ms: float) -> dict[str, Any]:
    """The cost of `make run`'s logging, measured as task events are (`by_drain`): the high pool
    restarted with LOG_LEVEL at `make run`'s default (INFO: one line per attempt, in `make
    run`'s LOG_FORMAT) and at WARNING (none), its added CPU per task over `run_cpu_ms`, the
    system's CPU per task end to end: {"logging_cost": {...}}. The pools are the only
    processes that write a line per task at INFO: the API writes none per request unless
    ACCESS_LOG is set (off by default), the dispatcher none per priority-1 task.

    Not end to end: pairs of end-to-end runs moved by more than the cost (22% in one `make
    bench`, -20% in the next, 2026-12-01)."""
    default = str(Settings.model_fields["log_level"].default)
    cost = by_drain(sut, db, "LOG_LEVEL", ("WARNING", default))
    share_of_run("logging at INFO", cost, run_cpu_ms)
    log_format = sut.env.get("LOG_FORMAT", str(Settings.model_fields["log_format"].default))
    return {"logging_cost": {**cost, "log_format": log_format}}

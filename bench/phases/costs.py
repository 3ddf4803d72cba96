"""What an optional feature costs end to end: task events (Flower's and `celery events`' feed)
and Prometheus metrics, each measured against the same system without it (issue 13's goal:
each within 5% of the end-to-end rate without it), and logging: `make run`'s LOG_LEVEL and
LOG_FORMAT (INFO, console lines: one per attempt) against LOG_LEVEL=WARNING (issue 14's goal: it
costs less than a sixth of the end-to-end rate). Task events are off by default (as in Celery;
Flower turns them on while it runs), metrics and INFO logging on.

One pair of runs says little on a shared machine, where the load of other work can move a rate
by more than the cost sought. So each feature is measured in PAIRS pairs of runs (end to end;
task events and logging, which only the workers pay per task, by the high pool draining a
backlog) on the same warm system, the feature off then on, then on then off (ABBA: a drift in
the machine's load between runs hits both sides alike), and the cost reported is the median of
the pairs' costs (`1 - on / off`), with every pair's rates beside it."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from celery import Celery

from adapters.broker.app import create_celery_app
from bench.cost import cpu_seconds, postgres_cpu_seconds
from bench.loadgen import wrk
from bench.phases.common import epoch, say
from bench.phases.throughput import HIGH_WORKER, _wait_ready, end_to_end
from bench.plan import Plan
from bench.system import SystemUnderTest
from bench.timings import Timings
from domain.priority import Priority
from entrypoints.settings import Settings

PAIRS = 3
# A drain pair takes about 15 s, an end-to-end pair a minute: more of them for the same time.
DRAIN_PAIRS = 5
# Enough tasks for a run of several seconds at either setting, short enough for 2 x PAIRS runs.
COST_TASKS = 4_000


def _pairs(
    sut: SystemUnderTest,
    db: Timings,
    plan: Plan,
    connections: int,
    setting: str,
    processes: tuple[str, ...],
    values: tuple[str, str] = ("false", "true"),
) -> dict[str, Any]:
    """`values`: the setting's value with the feature off, then on."""
    run_plan = replace(plan, e2e_tasks=min(plan.e2e_tasks, COST_TASKS))

    def run(on: bool) -> tuple[float, float]:
        _restart(sut, processes, setting, values[1] if on else values[0])
        return measured_run(sut, db, run_plan, connections)

    try:
        return abba(setting, run, run_plan.e2e_tasks)
    finally:
        _restart(sut, processes, setting, _value(sut, setting))  # back to the run's own value


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
    before = _system_cpu_seconds(sut)
    figures = end_to_end(sut, db, plan, connections)
    spent = _system_cpu_seconds(sut) - before
    return float(figures["e2e_tasks_per_s"]), spent * 1000 / max(figures["e2e"]["succeeded"], 1)


def _system_cpu_seconds(sut: SystemUnderTest) -> float:
    own = sum(cpu_seconds(p.pid) for p in sut.system.processes.values() if p.running)
    return own + postgres_cpu_seconds()


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
    """The cost of task events (the high pool restarted with TASK_EVENTS false and true,
    measured draining a backlog: `by_drain`) and of metrics (every process restarted with
    METRICS_ENABLED false and true, end to end), as fractions of the figure without them:
    {"events_cost": {...}, "metrics_cost": {...}}. Task events' `cost_of_run` is the CPU they
    add per task over the whole system's CPU per task end to end (metrics' runs at the
    defaults): what they cost the end-to-end run, the pool being one part of it."""
    every_process = tuple(sut.system.processes)
    events = by_drain(sut, db, "TASK_EVENTS", ("false", "true"))
    metrics = _pairs(sut, db, plan, connections, "METRICS_ENABLED", every_process)
    # The goal is a share of the run: the CPU events add per task (in the only process that
    # pays it) over the whole system's CPU per task end to end, at the defaults (metrics on).
    run_cpu_ms = statistics.median(pair["cpu_ms_on"] for pair in metrics["pairs"])
    share_of_run("task events", events, run_cpu_ms)
    return {"events_cost": events, "metrics_cost": metrics}


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


def drains(
    sut: SystemUnderTest,
    db: Timings,
    what: str,
    switch: Callable[[bool], None],
    tasks: int = COST_TASKS,
    *,
    whole_life: bool = False,
) -> dict[str, Any]:
    """A feature's cost in ABBA pairs of drains: `switch(on)` sets it, the high pool stops
    consuming (Celery's `cancel_consumer`), `tasks` priority-1 tasks are queued through the API
    at 64 connections, and the pool drains them (`add_consumer`): the drain's rate, and the
    pool's CPU time per task from the `add_consumer` to the last finish. `whole_life` adds the
    API processes' CPU time over the creates and PostgreSQL's over both (for a feature the
    database and the creates pay too). A first drain, not counted, warms the system.

    Not end to end, where the same setting's CPU per task moved by a quarter between runs (1.9
    to 2.9 ms, `make bench` of 2026-12-01): there the tasks per message follow how far the
    workers lag behind the creates, and so the run's speed. A backlog queued before the drain is
    grouped into messages the same way at either setting, so the work per task is the same."""
    app = create_celery_app(sut.redis_url, visibility_timeout_seconds=60, task_events=False)
    pool = sut.process(HIGH_WORKER)
    queue = Priority.HIGH.queue_name

    def database() -> float:
        return postgres_cpu_seconds() if whole_life else 0.0

    def run(on: bool) -> tuple[float, float]:
        switch(on)
        node = _node(app, queue)
        app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
        floor = db.max_id()
        created_from = cpu_seconds(sut.process("api").pid) + database() if whole_life else 0.0
        wrk.run_count(sut.system.base_url, connections=64, count=tasks, priority=1)
        creates = (
            cpu_seconds(sut.process("api").pid) + database() - created_from if whole_life else 0.0
        )
        before = cpu_seconds(pool.pid) + database()  # not the idle pool's while the API queued
        app.control.add_consumer(queue, destination=[node], reply=True, timeout=5)
        done = db.wait_finished_after(floor, timeout=600)
        spent = cpu_seconds(pool.pid) + database() - before + creates
        assert done.first_started is not None and done.last_finished is not None
        seconds = max(epoch(done.last_finished) - epoch(done.first_started), 1e-3)
        return done.total / seconds, spent * 1000 / max(done.succeeded, 1)

    try:
        run(False)  # a first drain warms what the pairs would otherwise bill to one side
        return abba(f"{what}, high pool draining a backlog", run, tasks, DRAIN_PAIRS)
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

"""`python -m bench.history_cost [--tasks N] [--pairs P]`: what the attempt history and the
event log (the triggers of revisions 0007 and 0008) and open event streams cost the end-to-end
rate (issue 16's goal: within 5% of it).

taskman runs on PostgreSQL + Redis with the production settings (bench.system); each run is the
end-to-end phase of `make bench` (N priority-1 tasks created by wrk at 16 connections, timed
until the last is in success). The baseline is the history triggers disabled (`ALTER TABLE tasks
DISABLE TRIGGER tasks_history_*`: the system before revision 0007). Two features are measured
against it: the triggers enabled (as shipped), and the triggers enabled with two clients
following `GET /api/v1/events`.

One pair of runs says little on a shared machine, where other work moves a rate by more than the
cost sought; so, as bench/phases/costs.py does for task events and metrics, each feature is
measured in P pairs of runs on the same warm system, baseline then feature, then feature then
baseline (ABBA: a drift in the machine's load hits both sides alike), and its cost is the median
of the pairs' costs (`1 - feature / baseline`), printed with every pair's rates."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.phases.common import say
from bench.phases.costs import COST_TASKS, PAIRS, abba, measured_run
from bench.phases.throughput import end_to_end
from bench.plan import Plan
from bench.system import SystemUnderTest, running_system
from bench.timings import Timings

TRIGGERS = ("tasks_history_insert", "tasks_history_update", "tasks_history_delete")
OFF = "history off"
STREAMS = "history on, 2 event streams"
FEATURES = ("history on", STREAMS)


def _triggers(sut: SystemUnderTest, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    with psycopg.connect(sut.libpq_url, autocommit=True) as connection:
        for trigger in TRIGGERS:
            connection.execute(f"ALTER TABLE tasks {verb} TRIGGER {trigger}")  # nosec B608


@contextmanager
def _followers(sut: SystemUnderTest, count: int) -> Iterator[list[int]]:
    """`count` clients reading every event while the block runs; yields their event counts."""
    stop = threading.Event()
    seen = [0] * count

    def follow(index: int) -> None:
        with (
            httpx.Client(base_url=sut.system.base_url, timeout=None) as client,
            client.stream("GET", "/api/v1/events") as stream,
        ):
            try:
                for line in stream.iter_lines():
                    seen[index] += line.startswith("data:")
                    if stop.is_set():
                        return
            except httpx.TransportError:  # the system stopped first: nothing left to count
                return

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()  # each ends at its next line: a heartbeat at the latest


@contextmanager
def _mode(sut: SystemUnderTest, mode: str) -> Iterator[None]:
    """The system in `mode` while the block runs (the triggers are left as the mode set them)."""
    _triggers(sut, enabled=mode != OFF)
    if mode != STREAMS:
        yield
        return
    with _followers(sut, 2) as seen:
        yield
    say(f"  events read by each stream: {seen}")


def _measured(
    sut: SystemUnderTest, db: Timings, plan: Plan, mode: str, connections: int
) -> tuple[float, float]:
    with _mode(sut, mode):
        rate, cpu_ms = measured_run(sut, db, plan, connections)
    say(f"  {mode}: {rate:.0f} tasks/s, {cpu_ms:.2f} ms of CPU per task")
    return rate, cpu_ms


def _cost(
    sut: SystemUnderTest, db: Timings, plan: Plan, feature: str, pairs: int, connections: int = 16
) -> dict[str, Any]:
    """`feature` against the triggers off, in `pairs` ABBA pairs (bench.phases.costs.abba)."""

    def run(on: bool) -> tuple[float, float]:
        return _measured(sut, db, plan, feature if on else OFF, connections)

    return abba(feature, run, plan.e2e_tasks, pairs)


def history_and_streams(
    sut: SystemUnderTest, db: Timings, plan: Plan, connections: int
) -> dict[str, Any]:
    """`make bench`'s phase (issue 16's goal: each within 5% of the end-to-end rate): the
    history triggers, then the triggers and two event streams, each against the triggers off,
    in PAIRS ABBA pairs of COST_TASKS tasks; the triggers are on again afterwards."""
    run_plan = replace(plan, e2e_tasks=min(plan.e2e_tasks, COST_TASKS))
    try:
        return {
            "history_cost": _cost(sut, db, run_plan, "history on", PAIRS, connections),
            "event_streams_cost": _cost(sut, db, run_plan, STREAMS, PAIRS, connections),
        }
    finally:
        _triggers(sut, enabled=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=COST_TASKS)
    parser.add_argument("--pairs", type=int, default=PAIRS)
    args = parser.parse_args(argv)
    plan = Plan(e2e_tasks=args.tasks)
    log_dir = Path(__file__).resolve().parent / "results" / "logs-history-cost"
    with running_system(log_dir) as sut:
        db = Timings(sut.libpq_url)
        try:
            end_to_end(sut, db, plan, 16)  # warm-up, not counted
            costs = {
                feature: _cost(sut, db, plan, feature, args.pairs)["cost"] for feature in FEATURES
            }
            _triggers(sut, enabled=True)
        finally:
            db.close()
    for feature, cost in costs.items():
        print(f"{feature:30} median cost {cost:+.1%} ({args.pairs} pairs of {args.tasks} tasks)")


if __name__ == "__main__":
    main()

"""`python -m bench.history_cost [--tasks N]`: what the attempt history and the event log (the
triggers of revisions 0007 and 0008) and open event streams cost (issue 16's goal: each within
5% of the end-to-end figure), as `make bench` measures them, on a system of its own.

taskman runs on PostgreSQL + Redis with the production settings (bench.system). Each cost is
a share of the system's CPU per task end to end, measured where it is paid rather than by the
end-to-end rate, which moves between runs on this shared machine by more than either cost:

- the triggers by ABBA pairs of drains with them disabled (`ALTER TABLE tasks DISABLE TRIGGER
  tasks_history_*`: the system before revision 0007) and enabled, counting PostgreSQL's CPU
  (where triggers run) from the first create to the last finish;
- two open event streams by bursts of events written to the log (`streams_by_burst`): the API
  processes' and PostgreSQL's CPU per event, times a task's events."""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.cost import CpuSnapshot, cpu_snapshot, cpu_spent, postgres_pids, tree_pids
from bench.phases.common import say
from bench.phases.costs import COST_TASKS, drains, measured_run, share_of_run
from bench.phases.throughput import end_to_end
from bench.plan import Plan
from bench.system import SystemUnderTest, running_system
from bench.timings import Timings

TRIGGERS = ("tasks_history_insert", "tasks_history_update", "tasks_history_delete")
DATA_FIELD = b"\ndata:"  # one per event (the line before it is its `event:`)
# The events of a priority-1 task's life: created (queued), running, success.
EVENTS_PER_TASK = 3
BURST_EVENTS = 30_000
BURSTS = 3


def _triggers(sut: SystemUnderTest, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    with psycopg.connect(sut.libpq_url, autocommit=True) as connection:
        for trigger in TRIGGERS:
            connection.execute(f"ALTER TABLE tasks {verb} TRIGGER {trigger}")  # nosec B608


@contextmanager
def _followers(sut: SystemUnderTest, count: int) -> Iterator[list[int]]:
    """`count` clients reading every event while the block runs; yields their event counts.

    Each counts the `data:` fields in the raw chunks, as cheaply as a client can: its CPU is
    taken from the same two cores as taskman's, and a client of a real deployment runs
    elsewhere."""
    stop = threading.Event()
    seen = [0] * count
    opened = [threading.Event() for _ in range(count)]

    def follow(index: int) -> None:
        with (
            httpx.Client(base_url=sut.system.base_url, timeout=None) as client,
            client.stream("GET", "/api/v1/events") as stream,
        ):
            opened[index].set()
            tail = b""  # a field's start split between two chunks is counted once, whole
            try:
                for chunk in stream.iter_raw():
                    data = tail + chunk
                    seen[index] += data.count(DATA_FIELD)
                    tail = data[1 - len(DATA_FIELD) :]
                    if stop.is_set():
                        return
            except httpx.TransportError:  # the system stopped first: nothing left to count
                return

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for event in opened:
        if not event.wait(10):
            raise RuntimeError("an event stream did not open within 10 s")
    try:
        yield seen
    finally:
        stop.set()  # each ends at its next line: a heartbeat at the latest


_BURST = """
    INSERT INTO task_events (task_id, tenant, status, priority, at)
    SELECT %(first_task)s + i, 'default', 'success', 1, now()
    FROM generate_series(1, %(events)s) AS i
"""
# Far above any task the bench creates: the burst's events are found and deleted by it.
_BURST_TASKS = 10**15


def _api_and_postgres_cpu(sut: SystemUnderTest) -> CpuSnapshot:
    return cpu_snapshot(tree_pids(sut.process("api").pid) + postgres_pids())


def streams_by_burst(
    sut: SystemUnderTest,
    run_cpu_ms: float,
    streams: int = 2,
    events: int = BURST_EVENTS,
    bursts: int = BURSTS,
) -> dict[str, Any]:
    """What open event streams cost, measured where it is paid: with `streams` clients
    following `GET /api/v1/events` on the idle system, `events` events are written to the log
    in one transaction (for tasks that do not exist: nothing else moves), and the CPU time of
    the API processes and of PostgreSQL is read from its commit until every client has every
    event, less what the same processes spend idle with the streams open over as long. The
    median of `bursts` bursts, per event and per task (EVENTS_PER_TASK events: a priority-1
    task's life), and as a share of `run_cpu_ms`, the system's CPU per task end to end (ms):
    {"cpu_ms_per_event", "cpu_ms_per_task", "cost_of_run", "bursts": [...], ...}.

    Not end to end, where two streams' cost (0.1 to 0.2 ms per task) is smaller than what the
    same setting's CPU per task moves between runs on this machine (0.3 ms and more): the burst
    keeps only the streams' work, the read of the log, the encoding and the sending."""
    measured = []
    with (
        psycopg.connect(sut.libpq_url, autocommit=True) as connection,
        _followers(sut, streams) as seen,
    ):
        idle_before = _api_and_postgres_cpu(sut)
        time.sleep(2.0)
        idle_per_s = cpu_spent(idle_before, _api_and_postgres_cpu(sut)) / 2.0
        for _ in range(bursts):
            counts = list(seen)
            # Measured from the commit on: writing the events is the triggers' cost (and no
            # reader sees one before the commit).
            connection.execute(_BURST, {"first_task": _BURST_TASKS, "events": events})
            started, before = time.monotonic(), _api_and_postgres_cpu(sut)
            deadline = started + 120
            while any(n - c < events for n, c in zip(seen, counts, strict=True)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the streams got {seen} of {events} events each")
                time.sleep(0.01)
            seconds = time.monotonic() - started
            spent = cpu_spent(before, _api_and_postgres_cpu(sut)) - idle_per_s * seconds
            measured.append({"seconds": round(seconds, 3), "cpu_ms": round(spent * 1000, 1)})
            connection.execute(
                "DELETE FROM task_events WHERE task_id > %(first)s", {"first": _BURST_TASKS}
            )
    per_event = statistics.median(m["cpu_ms"] for m in measured) / events
    per_task = per_event * EVENTS_PER_TASK
    say(
        f"{streams} event streams: {per_event * 1000:.1f} us of API and PostgreSQL CPU per event "
        f"(median of {bursts} bursts of {events}: {measured}), {per_task:.3f} ms per task: "
        f"{per_task / run_cpu_ms:+.1%} of the system's {run_cpu_ms:.2f} ms per task end to end"
    )
    return {
        "streams": streams,
        "events_per_burst": events,
        "bursts": measured,
        "idle_cpu_ms_per_s": round(idle_per_s * 1000, 2),
        "cpu_ms_per_event": round(per_event, 5),
        "cpu_ms_per_task": round(per_task, 4),
        "run_cpu_ms_per_task": round(run_cpu_ms, 4),
        "cost_of_run": round(per_task / run_cpu_ms, 4),
    }


def history_by_drain(sut: SystemUnderTest, db: Timings, run_cpu_ms: float) -> dict[str, Any]:
    """The history triggers' cost in ABBA pairs of drains with them off and on (bench.phases.
    costs.drains: PostgreSQL's CPU, where triggers run, from the first create to the last
    finish), as a share of `run_cpu_ms`, the system's CPU per task end to end (ms). The
    triggers are on again afterwards."""
    try:
        cost = drains(
            sut,
            db,
            "history triggers",
            lambda on: _triggers(sut, enabled=on),
            counted="PostgreSQL",
        )
    finally:
        _triggers(sut, enabled=True)
    share_of_run("the history triggers", cost, run_cpu_ms)
    return cost


def history_and_streams(sut: SystemUnderTest, db: Timings, run_cpu_ms: float) -> dict[str, Any]:
    """`make bench`'s phase (issue 16's goal: each within 5% of the end-to-end figure): the
    history triggers (`history_by_drain`) and two open event streams (`streams_by_burst`), each
    as a share of `run_cpu_ms`, the system's CPU per task end to end (ms)."""
    return {
        "history_cost": history_by_drain(sut, db, run_cpu_ms),
        "event_streams_cost": streams_by_burst(sut, run_cpu_ms),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=COST_TASKS)
    args = parser.parse_args(argv)
    plan = Plan(e2e_tasks=args.tasks)
    log_dir = Path(__file__).resolve().parent / "results" / "logs-history-cost"
    with running_system(log_dir) as sut:
        db = Timings(sut.libpq_url)
        try:
            end_to_end(sut, db, plan, 64)  # warm-up, not counted
            _, run_cpu_ms = measured_run(sut, db, plan, 64)
            history_and_streams(sut, db, run_cpu_ms)
        finally:
            db.close()


if __name__ == "__main__":
    main()

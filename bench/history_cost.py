"""`python -m bench.history_cost [--tasks N] [--rounds R]`: what the attempt history and the event
log (revision 0007's triggers) and an open event stream cost the end-to-end rate.

taskman runs on PostgreSQL + Redis with the production settings (bench.system), and the
end-to-end phase of `make bench` (N priority-1 tasks created by wrk at 16 connections, timed
until the last is in success) runs R times in each of three modes, alternately: the history
triggers enabled (as shipped), disabled (`ALTER TABLE tasks DISABLE TRIGGER tasks_history_*`:
the system before revision 0007), and enabled with two clients following `GET /api/v1/events`.
Prints each run and the median rate of each mode against the triggers disabled."""

from __future__ import annotations

import argparse
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from bench.phases.throughput import end_to_end
from bench.plan import AB, Plan
from bench.system import SystemUnderTest, running_system
from bench.timings import Timings

TRIGGERS = ("tasks_history_insert", "tasks_history_update", "tasks_history_delete")
MODES = ("history on", "history off", "history on, 2 event streams")


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=AB.e2e_tasks)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    plan = Plan(e2e_tasks=args.tasks)
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    log_dir = Path(__file__).resolve().parent / "results" / "logs-history-cost"
    with running_system(log_dir) as sut:
        db = Timings(sut.libpq_url)
        try:
            end_to_end(sut, db, plan, 16)  # warm-up, not counted
            for _ in range(args.rounds):
                for mode in MODES:
                    _triggers(sut, enabled=mode != "history off")
                    if mode.endswith("streams"):
                        with _followers(sut, 2) as seen:
                            figures = end_to_end(sut, db, plan, 16)
                        print(f"  events read by each stream: {seen}", flush=True)
                    else:
                        figures = end_to_end(sut, db, plan, 16)
                    rates[mode].append(figures["e2e_tasks_per_s"])
                    print(f"{mode}: {figures['e2e_tasks_per_s']} tasks/s", flush=True)
            _triggers(sut, enabled=True)
        finally:
            db.close()
    off = statistics.median(rates["history off"])
    for mode in MODES:
        median = statistics.median(rates[mode])
        print(f"{mode:30} median {median:7.1f} tasks/s ({100 * (median - off) / off:+.1f}%)")


if __name__ == "__main__":
    main()

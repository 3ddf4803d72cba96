"""`python -m bench.cost create|drain [--reps N]`: what one create or one task costs in CPU.

Throughput on a shared 2-core machine is noisy; CPU time per unit of work much less so. Starts
the system as `make bench` does (settings from the environment apply: `API_WORKERS=1 python -m
bench.cost create`), then:

- create: with the workers and the dispatcher stopped, wrk posts priority-1 tasks for a few
  seconds at 16 and at 64 connections; prints req/s, p99, and the CPU time per create of the
  API processes and of PostgreSQL, read from /proc, and how busy the machine was.
- drain: with the high pool stopped, wrk queues `--tasks` priority-1 tasks; the pool is started
  and drains them; prints tasks/s and the CPU time per task of the pool and of PostgreSQL."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import wrk
from bench.phases.common import epoch
from bench.system import SystemUnderTest, running_system
from bench.timings import Timings

RESULTS = Path(__file__).resolve().parent / "results"
CREATE_SECONDS = 4
_TICKS = os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds(pid: int) -> float:
    """User + system time of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for thread in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (thread / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


CpuSnapshot = dict[int, float]  # each process's own CPU seconds so far, by pid


def tree_pids(pid: int) -> list[int]:
    """A process and its live descendants."""
    return [pid, *(p for child in _children(pid) for p in tree_pids(child))]


def postgres_pids() -> list[int]:
    """Every process named postgres (the backends are the postmaster's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def cpu_snapshot(pids: list[int]) -> CpuSnapshot:
    """Each live process's own CPU seconds so far."""
    return {pid: _own_cpu_seconds(pid) for pid in pids}


def cpu_spent(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """CPU seconds spent between two snapshots, each process counted over the time it was
    alive in between: one that started since counts from zero, and one that exited since
    (a database connection closed by the pool, an autovacuum worker) drops out rather than
    taking its whole lifetime off the sum, as a difference of two totals would (its CPU since
    the first snapshot is lost: an undercount of at most that)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass
class Meter:
    """CPU seconds of one process tree, of PostgreSQL, and the machine's idle share."""

    pid: int

    def __post_init__(self) -> None:
        self.start = self._read()

    def _read(self) -> tuple[CpuSnapshot, CpuSnapshot, int, int]:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = cpu_snapshot(tree_pids(self.pid))
        return own, cpu_snapshot(postgres_pids()), sum(ticks), ticks[3] + ticks[4]

    def per_unit(self, units: int) -> str:
        own_before, pg_before, total_before, idle_before = self.start
        own_after, pg_after, total_after, idle_after = self._read()
        own, pg = cpu_spent(own_before, own_after), cpu_spent(pg_before, pg_after)
        total, idle = total_after - total_before, idle_after - idle_before
        busy = 1 - idle / total if total else 0.0
        return (
            f"own CPU {1000 * own / units:.2f} ms, PostgreSQL {1000 * pg / units:.2f} ms; "
            f"machine {100 * busy:.0f}% busy"
        )


def create_cost(sut: SystemUnderTest, reps: int) -> None:
    for name in ("worker-high", "worker-medium", "worker-low", "dispatcher"):
        sut.process(name).stop()
    api = sut.process("api").pid
    wrk.run_for(sut.system.base_url, connections=16, seconds=1, priority=1)  # warm up
    for _ in range(reps):
        for connections in (16, 64):
            meter = Meter(api)
            run = wrk.run_for(
                sut.system.base_url, connections=connections, seconds=CREATE_SECONDS, priority=1
            )
            print(
                f"create at {connections:>2} connections: {run.per_s:6.0f} req/s, "
                f"p99 {run.latency_ms.get('p99', 0):5.1f} ms, {run.errors} errors; per create: "
                f"{meter.per_unit(run.requests)}",
                flush=True,
            )


def drain_cost(sut: SystemUnderTest, reps: int, tasks: int) -> None:
    db = Timings(sut.libpq_url)
    pool = sut.process("worker-high")
    try:
        for _ in range(reps):
            floor = db.max_id()
            pool.stop()
            wrk.run_count(sut.system.base_url, connections=64, count=tasks, priority=1)
            pool.start()
            time.sleep(0.5)  # its pool processes forked, so the meter sees them
            meter = Meter(pool.pid)
            done = db.wait_finished_after(floor, timeout=600)
            assert done.first_started is not None and done.last_finished is not None
            seconds = epoch(done.last_finished) - epoch(done.first_started)
            print(
                f"drained {done.total} tasks in {seconds:.1f} s ({done.total / seconds:.0f}/s); "
                f"per task: {meter.per_unit(done.total)}",
                flush=True,
            )
    finally:
        db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["create", "drain"])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=8000, help="drain: tasks queued per rep")
    args = parser.parse_args(argv)
    with running_system(RESULTS / "logs") as sut:
        if args.what == "create":
            create_cost(sut, args.reps)
        else:
            drain_cost(sut, args.reps, args.tasks)


if __name__ == "__main__":
    main()

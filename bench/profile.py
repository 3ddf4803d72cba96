"""`python -m bench.profile api|worker [--seconds 15] [--backlog N]`: where the time goes.

Starts the system as `make bench` does, creates priority-1 tasks with wrk at 16 connections,
and samples either the API process or the high-priority worker pool (its forked children
included) with py-spy. With `--backlog N` (worker only), the high pool is stopped while wrk
creates N tasks, then started and sampled while it drains them, as `make bench`'s drain phase
measures it; the drain rate is printed too. Prints the functions with the most samples, on
their own (self) and with what they call (total); the collapsed stacks stay in
bench/results/profiles/<target>.txt (worker-drain.txt for a drain)."""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from bench.loadgen import wrk
from bench.timings import Timings

if TYPE_CHECKING:
    from bench.system import SystemUnderTest

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"api": "api", "worker": "worker-high", "dispatcher": "dispatcher"}


def record(pid: int, seconds: int, output: Path, gil_only: bool) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run(
        [
            py_spy,
            "record",
            f"--pid={pid}",
            f"--duration={seconds}",
            "--rate=200",
            "--subprocesses",
            "--nonblocking",
            *(["--gil"] if gil_only else []),
            "--format=raw",
            f"--output={output}",
        ],
        check=True,
        capture_output=True,
    )


def summarise(raw: Path, top: int) -> str:
    """Self and total sample counts per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    # One stack per "\n"-ended line: not splitlines(), which also splits on characters such as
    # U+2028 or \x1c that a frame's text may hold.
    for line in raw.read_text().split("\n"):
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")[1:]]  # first: process/thread
        samples += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples (busy threads only)", "", "self %  function"]
    lines += [f"{100 * n / samples:6.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total %  function"]
    lines += [f"{100 * n / samples:6.1f}  {name}" for name, n in total.most_common(top * 2)]
    return "\n".join(lines)


def _function(frame: str) -> str:
    # "send_task (celery/app/base.py:812)" -> "send_task (celery/app/base.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL: where the CPU goes"
    )
    parser.add_argument(
        "--backlog", type=int, default=0, help="worker: sample it draining this many tasks"
    )
    args = parser.parse_args(argv)
    if args.backlog and args.target != "worker":
        parser.error("--backlog profiles the high pool (target worker)")
    from bench.system import running_system  # starts processes: imported only when profiling

    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    with running_system(RESULTS / "logs" / "profile") as sut:
        if args.backlog:
            raw = out / "worker-drain.txt"
            _profile_drain(sut, args.backlog, args.connections, args.seconds, raw, args.gil)
            print(summarise(raw, args.top))
            return
        load = threading.Thread(
            target=wrk.run_for,
            args=(sut.system.base_url,),
            kwargs={"connections": args.connections, "seconds": args.seconds + 4, "priority": 1},
        )
        load.start()
        pid = sut.process(TARGETS[args.target]).pid
        threading.Event().wait(1)  # past the warm-up
        raw = out / f"{args.target}.txt"
        record(pid, args.seconds, raw, args.gil)
        load.join()
    print(summarise(raw, args.top))


def _profile_drain(
    sut: SystemUnderTest, backlog: int, connections: int, seconds: int, raw: Path, gil: bool
) -> None:
    """The high pool stopped while wrk creates `backlog` tasks, then sampled as it drains."""
    db = Timings(sut.libpq_url)
    try:
        floor = db.max_id()
        worker = sut.process(TARGETS["worker"])
        worker.stop()
        wrk.run_count(sut.system.base_url, connections=connections, count=backlog, priority=1)
        time.sleep(1)  # the last publications land
        messages = redis.Redis.from_url(sut.redis_url).llen("high")
        tasks = db.progress_after(floor).total
        print(
            f"backlog: {tasks} tasks in {messages} messages ({tasks / max(messages, 1):.1f} each)"
        )
        worker.start()
        threading.Event().wait(2)  # the pool forked and consuming
        record(worker.pid, seconds, raw, gil)
        drained = db.wait_finished_after(floor, timeout=600)
        assert drained.first_started is not None and drained.last_finished is not None
        drain_s = (drained.last_finished - drained.first_started).total_seconds()
        print(f"drained {drained.total} tasks in {drain_s:.1f} s: {drained.total / drain_s:.0f}/s")
    finally:
        db.close()


if __name__ == "__main__":
    main()

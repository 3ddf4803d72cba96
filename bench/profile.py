"""`python -m bench.profile api|worker [--seconds 15]`: where the time goes, by py-spy.

Starts the system as `make bench` does, creates priority-1 tasks with wrk at 16 connections,
and samples either the API process or the high-priority worker pool (its forked children
included) with py-spy. Prints the functions with the most samples, on their own (self) and with
what they call (total); the collapsed stacks stay in bench/results/profiles/<target>.txt."""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.loadgen import wrk

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
    for line in raw.read_text().splitlines():
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
    args = parser.parse_args(argv)
    from bench.system import running_system  # starts processes: imported only when profiling

    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    with running_system(RESULTS / "logs" / "profile") as sut:
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


if __name__ == "__main__":
    main()

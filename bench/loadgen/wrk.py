"""wrk (a C load generator) posting tasks: by duration for rates, or by count for workloads."""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import pyload

SCRIPT = Path(__file__).with_name("create_task.lua")
CREATE_PATH = "/api/v1/tasks"
# wrk splits connections evenly over its threads; two threads match this machine's two cores.
MAX_THREADS = 2

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    per_s: float
    latency_ms: dict[str, float]  # "p50", "p75", "p90", "p99"
    errors: int
    output: str


def ensurewrk_path() -> str | None:
    """wrk's path, installing the Debian package first if it is missing and we may; None if it
    cannot be had (the Python fallback generator is then used, and the bench says so)."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing the Debian package `wrk`", flush=True)
        for command in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"]):
            subprocess.run(command, check=False, capture_output=True)
            found = shutil.which("wrk")
            if found:
                break
        if found is None:  # the package list was stale: updated above, try once more
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
            found = shutil.which("wrk")
    if found is None:
        print("wrk unavailable: falling back to the Python generator (a lower ceiling)")
    return found


def run_for(base_url: str, *, connections: int, seconds: float, priority: int) -> WrkRun:
    """Create tasks for `seconds` over `connections` keep-alive connections."""
    if wrk_path() is None:
        return _fallback(base_url, connections, seconds, priority, count=0)
    argv = _argv(base_url, connections, seconds, priority, limit_per_thread=0)
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr or completed.stdout}")
    return parse(completed.stdout)


def run_count(
    base_url: str, *, connections: int, count: int, priority: int, timeout: float = 300
) -> WrkRun:
    """Create about `count` tasks as fast as possible, then stop.

    Each thread stops after its share of responses; requests still in flight on a stopped
    thread's other connections may yet create a few tasks more, so callers count tasks in the
    database, not here."""
    if wrk_path() is None:
        return _fallback(base_url, connections, timeout, priority, count=count)
    threads = min(MAX_THREADS, connections)
    per_thread = -(-count // threads)
    argv = _argv(base_url, connections, timeout, priority, limit_per_thread=per_thread)
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert wrk.stdout is not None
    lines: list[str] = []
    threads_done = 0
    for line in wrk.stdout:
        lines.append(line)
        if line.strip() == "limit reached":
            threads_done += 1
            if threads_done == threads:
                # wrk sleeps for its whole duration; SIGINT cuts the sleep short and it reports.
                wrk.send_signal(signal.SIGINT)
    if wrk.wait(timeout=60) != 0:
        raise RuntimeError(f"wrk failed: {''.join(lines)}")
    return parse("".join(lines))


def parse(output: str) -> WrkRun:
    latency = {
        f"p{match[1]}": float(match[2]) * _UNIT_MS[match[3]]
        for match in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    }
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if done is None or rate is None:
        raise RuntimeError(f"cannot read wrk's report:\n{output}")
    status_errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(status_errors[1]) if status_errors else 0
    if socket_errors:
        errors += sum(int(group) for group in socket_errors.groups())
    return WrkRun(
        requests=int(done[1]),
        seconds=float(done[2]) * _UNIT_MS[done[3]] / 1000,
        per_s=float(rate[1]),
        latency_ms=latency,
        errors=errors,
        output=output,
    )


def _argv(
    base_url: str, connections: int, seconds: float, priority: int, limit_per_thread: int
) -> list[str]:
    return [
        str(wrk_path()),
        f"--threads={min(MAX_THREADS, connections)}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=30s",
        "--latency",
        f"--script={SCRIPT}",
        base_url + CREATE_PATH,
        "--",
        str(priority),
        str(limit_per_thread),
    ]


@functools.cache
def wrk_path() -> str | None:
    return ensurewrk_path()


def _fallback(base_url: str, connections: int, seconds: float, priority: int, count: int) -> WrkRun:
    requests, elapsed, latencies, errors = pyload.run(
        base_url, connections=connections, seconds=seconds, priority=priority, count=count
    )
    return WrkRun(
        requests=requests,
        seconds=elapsed,
        per_s=requests / elapsed,
        latency_ms=pyload.summary(latencies),
        errors=errors,
        output="python fallback generator",
    )

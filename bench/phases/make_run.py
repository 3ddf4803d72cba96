"""The system as a user starts it, measured from outside (issue 14): `make run` with nothing
configured (its embedded defaults: SQLite and the filesystem broker, the Procfile's processes
under honcho, INFO logging) in a data directory of its own, driven by wrk POSTing priority-1
creates for `seconds` at each number of connections, then left until every task it accepted has
finished. Everything is read over HTTP: the list's totals (`GET /api/v1/tasks?status=...`).

    python -m bench.phases.make_run [--seconds 10] [--connections 32,64]

runs it alone; `make bench` runs it last, once its own system is stopped."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import wrk
from bench.phases.common import say
from entrypoints.settings import Settings
from tests.processes import ManagedProcess, free_port, wait_until

UNFINISHED = ("queued", "running")
FINISH_TIMEOUT = 600.0


def _environment(port: int, data_dir: Path) -> dict[str, str]:
    """The caller's environment without any taskman setting (so every one is `make run`'s
    default), the port and the data directory aside."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {name: value for name, value in os.environ.items() if name not in settings}
    return {**env, "PORT": str(port), "DATA_DIR": str(data_dir)}


def _total(client: httpx.Client, status: str | None = None) -> int:
    params = {"limit": "1", **({"status": status} if status else {})}
    response = client.get("/api/v1/tasks", params=params)
    response.raise_for_status()
    return int(response.json()["total"])


def _unfinished(client: httpx.Client) -> int:
    return sum(_total(client, status) for status in UNFINISHED)


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/health").status_code == 200
    except httpx.HTTPError:
        return False


def _one_run(
    client: httpx.Client, base_url: str, connections: int, seconds: float
) -> dict[str, Any]:
    before = _total(client)
    started = time.monotonic()
    run = wrk.run_for(base_url, connections=connections, seconds=seconds, priority=1)
    # Requests in flight when wrk stopped may still create a task: count once they are answered.
    time.sleep(0.5)
    created = _total(client) - before
    wait_until(lambda: _unfinished(client) == 0, FINISH_TIMEOUT, interval=0.1, what="all finished")
    finished = time.monotonic() - started
    figures = {
        "created": created,
        "creates_per_s": round(created / run.seconds, 1),
        "tasks_per_s": round(created / finished, 1),
        "create_p50_ms": round(run.latency_ms.get("p50", 0), 2),
        "create_p99_ms": round(run.latency_ms.get("p99", 0), 2),
        "errors": run.errors,
        "wrk_seconds": round(run.seconds, 2),
        "until_all_finished_s": round(finished, 2),
    }
    say(
        f"make run, wrk at {connections} connections for {seconds:.0f} s: {created} created "
        f"({figures['creates_per_s']:.0f}/s, p99 {figures['create_p99_ms']:.0f} ms, "
        f"{run.errors} errors), all finished after {finished:.1f} s "
        f"({figures['tasks_per_s']:.0f} tasks/s end to end)"
    )
    return figures


def make_run_under_wrk(
    log_dir: Path, connections: tuple[int, ...] = (32, 64), seconds: float = 10.0
) -> dict[str, Any]:
    """{"make_run_wrk": {"<connections>": {created, creates_per_s, tasks_per_s, ...}, ...}}:
    each run's creates per second over wrk's run, and its tasks per second from wrk's start
    until the last of them finished."""
    data_dir = Path(tempfile.mkdtemp(prefix="taskman-bench-make-run-"))
    port = free_port()
    make_run = ManagedProcess(
        "make-run",
        ["make", "--no-print-directory", "run"],
        env=_environment(port, data_dir),
        log_path=log_dir / "make-run.log",
    )
    base_url = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    try:
        make_run.start()
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            wait_until(lambda: _healthy(client), 180, interval=0.2, what="make run healthy")
            wrk.run_for(base_url, connections=16, seconds=1, priority=1)  # warm-up
            wait_until(lambda: _unfinished(client) == 0, FINISH_TIMEOUT, interval=0.1)
            for count in connections:
                results[str(count)] = _one_run(client, base_url, count, seconds)
    finally:
        make_run.stop(timeout=30, signum=signal.SIGINT)  # as Ctrl-C stops honcho
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"make_run_wrk": {"seconds": seconds, "runs": results}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", default="32,64")
    args = parser.parse_args(argv)
    connections = tuple(int(c) for c in args.connections.split(","))
    log_dir = Path(tempfile.mkdtemp(prefix="taskman-bench-logs-"))
    figures = make_run_under_wrk(log_dir, connections, args.seconds)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

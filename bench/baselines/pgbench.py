"""PostgreSQL's ceiling for accepting tasks: pgbench inserting one task-shaped row per
transaction, into a copy of the tasks table (same columns, constraints and indexes)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.stats import percentile

TABLE = "bench_pgbench_tasks"
# The row the API writes for a priority-1 task: queued, published at once, budget of 3.
INSERT = f"""\
INSERT INTO {TABLE} (type, status, priority, a, b, created_at, updated_at, scheduled_for,
    attempts, max_attempts, dispatch_no, published_at, version)
VALUES ('single', 'queued', 1, 20, 22, now(), now(), now(), 0, 3, 1, now(), 0)
RETURNING id;
"""
CANDIDATES = ("pgbench", "/usr/lib/postgresql/15/bin/pgbench")


@dataclass(frozen=True)
class PgbenchRun:
    clients: int
    tps: float
    p50_ms: float | None
    p99_ms: float | None


def find_pgbench() -> str:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError("pgbench not found (Debian package postgresql-client or postgresql)")


def prepare(libpq_url: str) -> None:
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(f"CREATE TABLE {TABLE} (LIKE tasks INCLUDING ALL)")


def drop(libpq_url: str) -> None:
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")


def run(libpq_url: str, *, clients: int, seconds: int) -> PgbenchRun:
    """Prepared statements, as psycopg uses them once a statement repeats."""
    with tempfile.TemporaryDirectory(prefix="pgbench-") as work:
        script = Path(work) / "insert.sql"
        script.write_text(INSERT)
        completed = subprocess.run(
            [
                find_pgbench(),
                "--no-vacuum",
                "--protocol=prepared",
                f"--client={clients}",
                f"--jobs={min(clients, 2)}",
                f"--time={seconds}",
                f"--file={script}",
                "--log",
                f"--log-prefix={Path(work) / 'txn'}",
                libpq_url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            cwd=work,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"pgbench failed: {completed.stderr}")
        latencies_ms = _latencies_ms(Path(work))
    tps = re.search(r"tps = ([\d.]+)", completed.stdout)
    if tps is None:
        raise RuntimeError(f"cannot read pgbench's report:\n{completed.stdout}")
    return PgbenchRun(
        clients=clients,
        tps=float(tps[1]),
        p50_ms=percentile(latencies_ms, 0.50),
        p99_ms=percentile(latencies_ms, 0.99),
    )


def _latencies_ms(work: Path) -> list[float]:
    # Per-transaction log lines: client_id transaction_no latency_us script_no epoch epoch_us.
    latencies: list[float] = []
    for log in work.glob("txn*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    return latencies

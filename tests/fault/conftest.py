"""The fault matrix's fixtures, and the table the run writes (tests/fault/results.md) from each
scenario's verdict."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fault.harness import RESULTS_DIR

TABLE = Path(__file__).parent / "results.md"
COMMAND = "make fault-test"


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under xdist each worker has a session too; only the controller (no `workerinput`) writes,
    # once every scenario has saved its verdict.
    if hasattr(session.config, "workerinput"):
        return
    verdicts = [json.loads(path.read_text()) for path in sorted(RESULTS_DIR.glob("*.json"))]
    if verdicts:
        TABLE.write_text(render(verdicts))


def render(verdicts: list[dict[str, object]]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The fault matrix: last run",
        "",
        f"`{COMMAND}`, {when}. Each fault hits a system of its own (its own PostgreSQL cluster",
        "and redis-server) while clients create tasks; the ledger then checks the tasks table.",
        "*tasks*: creates answered 201; *lost*: a 201 with no row, or a row not ending `success`",
        "with the right sum; *run twice*: a second successful attempt, an attempt before the",
        "last that was neither released nor lost during the fault, or a row or attempt history",
        "that changed after the task finished; *5xx*: server errors other than 503; *lost",
        "attempts*: attempts cut short by the fault and handed on by their leases (each in flight",
        "during the fault), on *re-run* tasks; *released*: claims given back before the attempt",
        "began (not counted as attempts).",
        "",
        "| fault | tasks | lost | run twice | 5xx | 503 | no answer | lost attempts (re-run tasks) "
        "| released | ok |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v in verdicts:
        lines.append(
            f"| {v['fault']} | {v['tasks']} | {v['lost']} | {v['run_twice']} "
            f"| {v['server_errors']} | {v['unavailable']} | {v['no_answer']} "
            f"| {v['lost_attempts']} ({v['rerun_after_killed_attempt']}) "
            f"| {v['released_attempts']} | {'yes' if v['ok'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"

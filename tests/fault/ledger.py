"""The ledger: every request a scenario's clients make and what came back, checked at the end
against the tasks table.

The rules (issue 10): every 201 is a row; every accepted task ends `success` with the right sum;
none runs twice in effect; no 5xx but 503.

"Runs twice in effect" is judged from each task's attempt history (`task_attempts`, written by
the store's triggers in the statement that moves the task, revision 0007), not from a count: a
task has exactly one attempt ending `success`, and it is its last; every attempt before it was
either `released` (given back before its work began, its count taken back) or `lost` (its lease
expired), and each lost one was in flight while a fault the scenario declared (`Ledger.fault`)
was hitting the system; the task's `attempts` counts its attempts but the released ones; and
neither the task's row nor its history changes when read again after a settle time longer than
a lease. So a worker that claims a message's several tasks at once and dies loses exactly those
attempts, each of them accounted for, however many there were."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine, text

FINISHED = ("success", "failed", "cancelled")
# What an attempt before a task's successful one may have ended as, in these scenarios (the work,
# a sum, never raises): given back unstarted, or cut short by a fault and handed on by its lease.
EXPLAINED = ("released", "lost")


@dataclass(frozen=True, slots=True)
class Create:
    """One create request: the operands sent, and the status (None: no answer) and task id."""

    a: int
    b: int
    priority: int
    status: int | None
    task_id: int | None
    error: str | None


@dataclass(slots=True)
class Verdict:
    """A scenario's line of the matrix, with the evidence behind each count."""

    fault: str
    tasks: int = 0  # accepted (201)
    lost: int = 0
    run_twice: int = 0
    server_errors: int = 0  # 5xx other than 503
    unavailable: int = 0  # 503
    no_answer: int = 0  # connection errors and timeouts seen by clients
    rows_without_201: int = 0  # committed rows whose client saw no 201 (allowed, checked alike)
    rerun_after_killed_attempt: int = 0  # tasks with at least one lost attempt
    lost_attempts: int = 0  # attempts whose lease expired, each within a declared fault
    released_attempts: int = 0  # claims given back before the attempt began
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Ledger:
    """Thread-safe: the load's clients and the fault's own requests record into one ledger."""

    def __init__(self, fault: str) -> None:
        self.fault_name = fault
        self.creates: list[Create] = []
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
        self.faults: list[tuple[datetime, datetime]] = []
        self._lock = threading.Lock()

    # ----- recording ---------------------------------------------------------------------------

    def create(
        self,
        client: httpx.Client,
        a: int,
        b: int,
        priority: int,
        headers: dict[str, str] | None = None,
    ) -> Create:
        """POST /api/v1/tasks and record the outcome; never raises for a transport error."""
        body = {"a": a, "b": b, "priority": priority}
        try:
            response = client.post("/api/v1/tasks", json=body, headers=headers)
        except httpx.TransportError as error:
            created = Create(a, b, priority, None, None, f"{type(error).__name__}: {error}")
        else:
            self.response(response)
            task_id = response.json()["id"] if response.status_code == 201 else None
            created = Create(a, b, priority, response.status_code, task_id, None)
        with self._lock:
            self.creates.append(created)
        return created

    def response(self, response: httpx.Response) -> None:
        """Count any response (creates are counted by `create`); keep every 5xx but 503."""
        with self._lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.status_code != 503:
                request = response.request
                self.server_errors.append(
                    f"{request.method} {request.url.path}: {response.status_code} "
                    f"{response.text[:300]}"
                )

    @contextmanager
    def fault(self) -> Iterator[None]:
        """Around the action that may cut attempts short (a kill, a stop until it resumes, a
        store outage): an attempt may end `lost` only if it was in flight during one of these
        windows (claimed before the window ended, handed on after it began)."""
        began = datetime.now(UTC)
        try:
            yield
        finally:
            with self._lock:
                self.faults.append((began, datetime.now(UTC)))

    def accepted(self) -> list[Create]:
        with self._lock:
            return [c for c in self.creates if c.status == 201]

    # ----- checking ----------------------------------------------------------------------------

    def check(
        self,
        database_url: str,
        *,
        finish_timeout: float = 90.0,
        settle_seconds: float = 4.0,
    ) -> Verdict:
        """Wait until every row is finished (or `finish_timeout`), read the tasks and their
        attempts, wait `settle_seconds` (at least a lease, so a late outcome would land), read
        them again, and judge them by the module's rules."""
        verdict = Verdict(self.fault_name)
        accepted = self.accepted()
        verdict.tasks = len(accepted)
        verdict.unavailable = self.statuses[503]
        verdict.no_answer = sum(1 for c in self.creates if c.status is None)
        verdict.server_errors = len(self.server_errors)
        verdict.problems += self.server_errors[:5]
        engine = create_engine(database_url, pool_pre_ping=True)
        try:
            rows = self._when_finished(engine, finish_timeout)
            attempts = _read_attempts(engine)
            time.sleep(settle_seconds)
            settled = _read(engine)
            settled_attempts = _read_attempts(engine)
        finally:
            engine.dispose()

        by_id = {c.task_id: c for c in accepted}
        if len(by_id) != len(accepted):
            verdict.problems.append("two 201s named the same task id")
        for create in accepted:
            row = rows.get(create.task_id)
            if row is None:
                verdict.lost += 1
                verdict.problems.append(f"201 for task {create.task_id} but no row")
            elif (row["a"], row["b"]) != (create.a, create.b):
                verdict.lost += 1
                verdict.problems.append(f"task {create.task_id} stored other operands: {row}")
        for task_id, row in rows.items():
            if task_id not in by_id:
                verdict.rows_without_201 += 1
            if row["status"] != "success" or row["result"] != row["a"] + row["b"]:
                verdict.lost += 1
                verdict.problems.append(f"task {task_id} did not end in success with a+b: {row}")
        for task_id, row in rows.items():
            history = attempts.get(task_id, [])
            if settled.get(task_id) != row or settled_attempts.get(task_id, []) != history:
                verdict.run_twice += 1
                verdict.problems.append(
                    f"task {task_id} changed after it finished: {row} {history} then "
                    f"{settled.get(task_id)} {settled_attempts.get(task_id)}"
                )
            self._judge_attempts(verdict, task_id, row, history)
        return verdict

    def _judge_attempts(
        self, verdict: Verdict, task_id: int, row: dict[str, Any], history: list[dict[str, Any]]
    ) -> None:
        """One task's attempts against the rules; `history` in the order they were claimed."""
        outcomes = Counter(attempt["outcome"] for attempt in history)
        verdict.lost_attempts += outcomes["lost"]
        verdict.released_attempts += outcomes["released"]
        if outcomes["lost"]:
            verdict.rerun_after_killed_attempt += 1
        if outcomes["success"] > 1:
            verdict.run_twice += 1
            verdict.problems.append(f"task {task_id} succeeded {outcomes['success']} times")
        if row["status"] == "success" and (not history or history[-1]["outcome"] != "success"):
            verdict.problems.append(f"task {task_id} is success but its last attempt is not")
        for attempt in history[:-1]:
            if attempt["outcome"] not in EXPLAINED:
                verdict.run_twice += 1
                verdict.problems.append(
                    f"task {task_id}: an attempt before its last ended {attempt['outcome']!r}, "
                    f"neither released nor lost: {attempt}"
                )
            elif attempt["outcome"] == "lost" and not self._in_a_fault(attempt):
                verdict.run_twice += 1
                verdict.problems.append(
                    f"task {task_id}: an attempt was lost (lease expired) while no fault hit: "
                    f"{attempt}; faults {self.faults}"
                )
        counted = len(history) - outcomes["released"]
        if row["attempts"] != counted:
            verdict.problems.append(
                f"task {task_id} counts {row['attempts']} attempts, its history {counted} "
                f"(released ones aside): {history}"
            )

    def _in_a_fault(self, attempt: dict[str, Any]) -> bool:
        """Claimed before a fault's window ended and handed on after it began."""
        started, ended = attempt["started_at"], attempt["finished_at"]
        return ended is not None and any(
            started <= until and ended >= since for since, until in self.faults
        )

    @staticmethod
    def _when_finished(engine: Any, timeout: float) -> dict[int, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = _read(engine)
            if all(row["status"] in FINISHED for row in rows.values()):
                return rows
            if time.monotonic() >= deadline:
                return rows  # the unfinished ones are reported as lost
            time.sleep(0.2)


def _read(engine: Any) -> dict[int, dict[str, Any]]:
    query = text(
        "SELECT id, status, a, b, result, attempts, finished_at, dispatch_no FROM tasks ORDER BY id"
    )
    with engine.connect() as connection:
        return {row.id: dict(row._mapping) for row in connection.execute(query)}


def _read_attempts(engine: Any) -> dict[int, list[dict[str, Any]]]:
    query = text(
        "SELECT task_id, attempt, dispatch_no, outcome, started_at, finished_at "
        "FROM task_attempts ORDER BY task_id, id"
    )
    history: dict[int, list[dict[str, Any]]] = defaultdict(list)
    with engine.connect() as connection:
        for row in connection.execute(query):
            history[row.task_id].append(dict(row._mapping))
    return history

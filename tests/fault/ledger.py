"""The ledger: every request a scenario's clients make and what came back, checked at the end
against the tasks table.

The rules (issue 10): every 201 is a row; every accepted task ends `success` with the right sum;
none runs twice in effect (no more attempts than the fault killed, and `finished_at` and the
result unchanged when read again after a settle time); no 5xx but 503."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from sqlalchemy import create_engine, text

FINISHED = ("success", "failed", "cancelled")


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
    rerun_after_killed_attempt: int = 0
    attempts_killed_at_most: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Ledger:
    """Thread-safe: the load's clients and the fault's own requests record into one ledger."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.creates: list[Create] = []
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
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

    def accepted(self) -> list[Create]:
        with self._lock:
            return [c for c in self.creates if c.status == 201]

    # ----- checking ----------------------------------------------------------------------------

    def check(
        self,
        database_url: str,
        *,
        attempts_killed_at_most: int = 0,
        finish_timeout: float = 90.0,
        settle_seconds: float = 4.0,
    ) -> Verdict:
        """Wait until every row is finished (or `finish_timeout`), read the table, wait
        `settle_seconds` (at least a lease, so a late outcome would land), read it again.

        `attempts_killed_at_most`: how many attempts the fault may have killed in flight (each
        one runs its task once more); more extra attempts than that is a task run twice."""
        verdict = Verdict(self.fault, attempts_killed_at_most=attempts_killed_at_most)
        accepted = self.accepted()
        verdict.tasks = len(accepted)
        verdict.unavailable = self.statuses[503]
        verdict.no_answer = sum(1 for c in self.creates if c.status is None)
        verdict.server_errors = len(self.server_errors)
        verdict.problems += self.server_errors[:5]
        engine = create_engine(database_url, pool_pre_ping=True)
        try:
            rows = self._when_finished(engine, finish_timeout)
            time.sleep(settle_seconds)
            settled = _read(engine)
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
        extra_attempts = 0
        for task_id, row in rows.items():
            if row["attempts"] > 1:
                verdict.rerun_after_killed_attempt += 1
                extra_attempts += row["attempts"] - 1
            if settled.get(task_id) != row:
                verdict.run_twice += 1
                verdict.problems.append(
                    f"task {task_id} changed after it finished: {row} then {settled.get(task_id)}"
                )
        if extra_attempts > attempts_killed_at_most:
            verdict.run_twice += extra_attempts - attempts_killed_at_most
            verdict.problems.append(
                f"{extra_attempts} attempt(s) beyond the first, but the fault killed at most "
                f"{attempts_killed_at_most}"
            )
        return verdict

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

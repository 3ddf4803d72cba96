"""What a client sees, over HTTP, against the running system. Each test class that mixes these
in provides a class-scoped `system` fixture: the same scenarios run on every way of running."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.processes import wait_until
from tests.system import examples
from tests.system.harness import RunningSystem

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def curl(system: RunningSystem, command: str) -> tuple[int, Any]:
    argv = shlex.split(command.replace("localhost:8000", f"127.0.0.1:{system.port}"))
    argv[1:1] = ["-sS", "-w", "\n%{http_code}"]
    for name, value in system.auth_headers.items():  # AUTH=required: the system's key
        argv[1:1] = ["-H", f"{name}: {value}"]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    body, status = output.rsplit("\n", 1)
    return int(status), json.loads(body)


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def assert_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert "Traceback" not in response.text


class CoreScenarios:
    def test_the_readme_create_example_reaches_success_with_30(self, system: RunningSystem) -> None:
        status, task = curl(system, examples.CREATE.command)
        assert status == 201
        assert (task["a"], task["b"], task["priority"], task["type"]) == (10, 20, 1, "single")
        done = system.wait_for(task["id"])
        assert (done["status"], done["result"], done["attempts"]) == ("success", 30, 1)

    def test_the_readme_batch_example_sums_in_order(self, system: RunningSystem) -> None:
        status, task = curl(system, examples.CREATE_BATCH.command)
        assert status == 201
        done = system.wait_for(task["id"])
        assert done["type"] == "batch"
        assert done["results"] == [3, 7]
        assert done["pairs"] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]

    def test_sums_are_exact_beyond_64_bits(self, system: RunningSystem) -> None:
        single = system.create(2**62, 2**62)
        batch = system.http.post(
            "/api/v1/tasks/batch",
            json={
                "pairs": [{"a": 2**63 - 1, "b": 2**63 - 1}, {"a": -(2**63), "b": -(2**63)}],
                "priority": 1,
            },
        ).json()
        assert system.wait_for(single["id"])["result"] == 2**63
        assert system.wait_for(batch["id"])["results"] == [2**64 - 2, -(2**64)]

    def test_priorities_start_after_their_delays_and_a_cancelled_task_never_runs(
        self, system: RunningSystem
    ) -> None:
        high, medium, low = (system.create(p, p, priority=p) for p in (1, 2, 3))
        doomed = system.create(5, 5, priority=3)
        cancelled = system.http.post(f"/api/v1/tasks/{doomed['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        for task, (earliest, latest) in (
            (high, (0, 1.0)),
            (medium, (5.0, 6.5)),
            (low, (10.0, 11.5)),
        ):
            done = system.wait_for(task["id"], timeout=20)
            assert done["status"] == "success"
            assert earliest <= seconds_between(done["created_at"], done["started_at"]) <= latest
        still = system.task(doomed["id"])
        assert (still["status"], still["attempts"], still["started_at"]) == ("cancelled", 0, None)

    def test_a_queued_low_task_moved_to_high_runs_at_once_and_once(
        self, system: RunningSystem
    ) -> None:
        task = system.create(7, 8, priority=3)
        changed = system.http.put(f"/api/v1/tasks/{task['id']}", json={"priority": 1})
        assert changed.status_code == 200 and changed.json()["priority"] == 1
        done = system.wait_for(task["id"], timeout=5)
        assert (done["status"], done["result"], done["attempts"]) == ("success", 15, 1)
        assert seconds_between(changed.json()["updated_at"], done["finished_at"]) < 2
        again = system.http.put(f"/api/v1/tasks/{task['id']}", json={"priority": 2})
        assert_problem(again, 409)

    def test_list_filters_and_pages_newest_first(self, system: RunningSystem) -> None:
        created = [system.create(i, 1, priority=3) for i in range(3)]
        for task in created:
            system.http.post(f"/api/v1/tasks/{task['id']}/cancel")
        page = system.http.get(
            "/api/v1/tasks", params={"status": "cancelled", "priority": 3, "limit": 2}
        )
        body = page.json()
        assert page.status_code == 200
        assert (body["limit"], body["offset"]) == (2, 0)
        assert body["total"] >= 3
        assert [t["id"] for t in body["items"]] == [created[2]["id"], created[1]["id"]]
        second = system.http.get(
            "/api/v1/tasks", params={"status": "cancelled", "priority": 3, "limit": 2, "offset": 1}
        ).json()
        assert second["items"][0]["id"] == created[1]["id"]
        everything = system.http.get("/api/v1/tasks", params={"limit": 1000}).json()
        ids = [t["id"] for t in everything["items"]]
        assert ids == sorted(ids, reverse=True)
        assert {t["id"] for t in created} <= set(ids)
        batches = system.http.get("/api/v1/tasks", params={"type": "batch"}).json()
        assert all(t["type"] == "batch" for t in batches["items"])

    def test_errors_are_problems_and_change_nothing(self, system: RunningSystem) -> None:
        before = system.http.get("/api/v1/tasks", params={"limit": 1}).json()["total"]
        assert_problem(system.http.get("/api/v1/tasks/999999999"), 404)
        assert_problem(system.http.put("/api/v1/tasks/999999999", json={"priority": 1}), 404)
        assert_problem(system.http.post("/api/v1/tasks/999999999/retry"), 404)
        for body in (
            {"a": 1.5, "b": 1},
            {"a": True, "b": 1},
            {"a": "1", "b": 1},
            {"a": 2**63, "b": 0},
            {"a": 1, "b": 1, "priority": 4},
            {"a": 1},
            {},
        ):
            assert_problem(system.http.post("/api/v1/tasks", json=body), 422)
        assert_problem(
            system.http.post(
                "/api/v1/tasks", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
        )
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
            headers = {} if content_type is None else {"content-type": content_type}
            refused = system.http.post(
                "/api/v1/tasks", content=b'{"a": 1, "b": 2}', headers=headers
            )
            assert_problem(refused, 415)
            assert "Content-Type" in refused.json()["detail"]
        assert_problem(system.http.get("/api/v1/tasks", params={"status": "lost"}), 422)
        too_many = {"pairs": [{"a": 1, "b": 1}] * 1001, "priority": 1}
        assert_problem(system.http.post("/api/v1/tasks/batch", json=too_many), 413)
        queued = system.create(1, 1, priority=3)
        assert_problem(system.http.post(f"/api/v1/tasks/{queued['id']}/retry"), 409)
        assert_problem(
            system.http.put(f"/api/v1/tasks/{queued['id']}", json={"priority": None}), 422
        )
        after = system.http.get("/api/v1/tasks", params={"limit": 1}).json()["total"]
        assert after == before + 1

    def test_openapi_and_swagger_ui_are_served(self, system: RunningSystem) -> None:
        schema = system.http.get("/openapi.json")
        assert schema.status_code == 200
        assert "/api/v1/tasks" in schema.json()["paths"]
        assert system.http.get("/docs").status_code == 200

    def test_schemathesis_finds_no_server_error_and_no_schema_violation(
        self, system: RunningSystem, tmp_path: Path
    ) -> None:
        schemathesis = Path(sys.executable).parent / "schemathesis"
        result = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{system.base_url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "20",
                # One worker: with two, hypothesis threads describing lambdas parse the same
                # source file at once and hit CPython 3.11's AST recursion-depth bug
                # (gh-106905, "SystemError: AST constructor recursion depth mismatch"), which
                # the `pattern`s of the task id and Idempotency-Key parameters made frequent.
                "--workers",
                "1",
                # Hypothesis's own check that generated inputs stay small sometimes trips on the
                # routes' patterns (the id and Idempotency-Key): a verdict on the generator, not
                # on the API, as the unit run in tests/unit/api/test_schemathesis.py also says.
                "--suppress-health-check",
                "data_too_large",
                # An event stream answers for as long as it is read (the task stream until its
                # task finishes), and a bulk move would cancel or retry the other scenarios'
                # tasks on this shared system: each has its own tests (tests/system/
                # console_scenarios.py, tests/unit/api/test_console.py, the unit schemathesis).
                "--exclude-operation-id",
                "taskEvents",
                "--exclude-operation-id",
                "events",
                "--exclude-operation-id",
                "bulkMove",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


class FaultScenarios:
    """Scenarios that restart or stop parts of the system (only where the test controls them)."""

    def test_automatic_retries_then_a_manual_retry(self, system: RunningSystem) -> None:
        workers = ("worker-high", "worker-medium", "worker-low")
        system.restart(*workers, TASK_FAILURE_RATE="1")
        try:
            task = system.create(20, 22)
            failed = system.wait_for(task["id"], timeout=30)
            assert (failed["status"], failed["attempts"]) == ("failed", 3)
            assert "injected fault" in failed["error_message"]
            assert failed["result"] is None
        finally:
            system.restart(*workers, TASK_FAILURE_RATE="0")
        retried = system.http.post(f"/api/v1/tasks/{task['id']}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "queued"
        done = system.wait_for(task["id"], timeout=30)
        assert (done["status"], done["result"], done["attempts"], done["error_message"]) == (
            "success",
            42,
            1,
            None,
        )

    def test_health_is_503_while_redis_is_down_and_accepted_tasks_survive(
        self, system: RunningSystem, redis: Any
    ) -> None:
        redis.stop()
        try:
            down = wait_until(
                lambda: (r := system.http.get("/api/v1/health")).status_code == 503 and r, 10
            )
            assert "broker" in down.text
            accepted = system.create(40, 2)  # committed even though it cannot be published now
        finally:
            redis.start()
        wait_until(lambda: system.http.get("/api/v1/health").status_code == 200, 20)
        assert system.wait_for(accepted["id"], timeout=30)["result"] == 42

    def test_the_container_health_checks_tell_each_role(self, system: RunningSystem) -> None:
        env = system.processes["api"].env

        def healthcheck(*args: str) -> int:
            command = [sys.executable, "-m", "entrypoints.healthcheck", *args]
            return subprocess.run(command, env=env, capture_output=True, timeout=60).returncode

        assert healthcheck("api") == 0
        assert healthcheck("dispatcher", "--grace", "1") == 0
        assert healthcheck("worker", "low") == 0
        system.processes["worker-low"].stop()
        try:
            assert healthcheck("worker", "low") == 1
        finally:
            system.processes["worker-low"].start()
        system.processes["dispatcher"].stop()
        try:
            overdue = system.create(1, 1, priority=2)  # due in 5 s, and nobody to publish it
            wait_until(lambda: healthcheck("dispatcher", "--grace", "1") == 1, 30, interval=0.5)
        finally:
            system.processes["dispatcher"].start()
        assert system.wait_for(overdue["id"], timeout=20)["status"] == "success"
        assert healthcheck("dispatcher", "--grace", "1") == 0

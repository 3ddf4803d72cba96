"""Retrying safely and strict task ids (issue 10, parts 5 and 6), over HTTP against the running
system: each test class that mixes these in provides a module-scoped `system` fixture."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.system.harness import RunningSystem
from tests.system.scenarios import assert_problem

TASKS = "/api/v1/tasks"
ID_ROUTES = [("GET", ""), ("PUT", ""), ("POST", "/retry"), ("POST", "/cancel")]
MALFORMED_IDS = ["01", "+1", "1.0", "1_0", "%201", "-1", "abc"]
NAMING_NO_TASK = ["0", "999999999", str(2**63), "9" * 40]
DUPLICATES = 8


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f'"{uuid.uuid4()}"'}


def _total(system: RunningSystem) -> int:
    return system.http.get(TASKS, params={"limit": 1}).json()["total"]  # type: ignore[no-any-return]


class RetrySafetyScenarios:
    def test_a_retry_after_the_task_finished_replays_the_original_201(
        self, system: RunningSystem
    ) -> None:
        key, body = _key(), {"a": 10, "b": 20, "priority": 1}
        first = system.http.post(TASKS, json=body, headers=key)
        assert first.status_code == 201, first.text
        done = system.wait_for(first.json()["id"])
        assert done["status"] == "success"
        before = _total(system)

        again = system.http.post(TASKS, json=body, headers=key)

        assert again.status_code == 201
        assert again.content == first.content and again.json()["status"] == "queued"
        assert again.headers["location"] == first.headers["location"]
        assert system.http.get(first.headers["location"]).json()["result"] == 30
        assert _total(system) == before

    def test_a_batch_retry_replays_the_original_201(self, system: RunningSystem) -> None:
        key, body = _key(), {"pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "priority": 1}
        first = system.http.post(f"{TASKS}/batch", json=body, headers=key)
        assert first.status_code == 201, first.text
        before = _total(system)

        again = system.http.post(f"{TASKS}/batch", json=body, headers=key)

        assert (again.status_code, again.content) == (201, first.content)
        assert _total(system) == before

    def test_the_same_key_with_another_body_is_422_and_creates_nothing(
        self, system: RunningSystem
    ) -> None:
        key = _key()
        assert system.http.post(TASKS, json={"a": 1, "b": 2}, headers=key).status_code == 201
        before = _total(system)

        response = system.http.post(TASKS, json={"a": 1, "b": 3}, headers=key)

        assert_problem(response, 422)
        assert response.json()["type"] == "urn:taskman:problem:idempotency-key-reused"
        assert _total(system) == before

    def test_concurrent_duplicates_create_one_task_each_answer_is_it_or_409(
        self, system: RunningSystem
    ) -> None:
        key, body = _key(), {"a": 7, "b": 7, "priority": 3}
        before = _total(system)
        start = threading.Barrier(DUPLICATES)

        def post() -> httpx.Response:
            with httpx.Client(
                base_url=system.base_url, timeout=10.0, headers=system.auth_headers
            ) as client:
                start.wait()
                return client.post(TASKS, json=body, headers=key)

        with ThreadPoolExecutor(DUPLICATES) as pool:
            responses = list(pool.map(lambda _: post(), range(DUPLICATES)))

        created = [r for r in responses if r.status_code == 201]
        assert created and {r.status_code for r in responses} <= {201, 409}, [
            r.text for r in responses
        ]
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409)
        assert len({r.content for r in created}) == 1
        assert _total(system) == before + 1
        # Once it has answered, every retry replays it.
        replay = system.http.post(TASKS, json=body, headers=key)
        assert (replay.status_code, replay.content) == (201, created[0].content)

    def test_a_malformed_task_id_is_422_and_an_id_naming_no_task_404_on_every_route(
        self, system: RunningSystem
    ) -> None:
        for _ in range(10):  # so that ids 1 and 10 exist: a lax parser would answer for them
            system.create(1, 1, priority=3)
        before = _total(system)
        for method, suffix in ID_ROUTES:
            for task_id in MALFORMED_IDS:
                response = system.http.request(
                    method, f"{TASKS}/{task_id}{suffix}", json={"priority": 1}
                )
                assert_problem(response, 422)
                assert response.json()["errors"][0]["loc"] == ["path", "task_id"], task_id
            for task_id in NAMING_NO_TASK:
                response = system.http.request(
                    method, f"{TASKS}/{task_id}{suffix}", json={"priority": 1}
                )
                assert_problem(response, 404)
        assert _total(system) == before

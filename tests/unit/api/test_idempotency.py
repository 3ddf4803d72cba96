"""Idempotency-Key on POST /tasks and POST /tasks/batch (issue 10, part 5), on the API with the
core's fakes: a retry replays the first response instead of creating a second task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from application.use_cases import CreateTask, CreateTaskRequest
from application.use_cases._acceptance import Outcome
from domain.task import TaskStatus
from tests.unit.api.conftest import TEST_SETTINGS, Api, build_api
from tests.unit.api.shapes import assert_problem, assert_validation_problem

TASKS = "/api/v1/tasks"
BATCH = "/api/v1/tasks/batch"
KEY = {"Idempotency-Key": '"8e03978e-40d5-43e8-bc93-6894a57f9324"'}


def _post(api: Api, path: str, body: dict[str, Any], headers: dict[str, str] = KEY) -> Any:
    return api.client.post(path, json=body, headers=headers)


def test_a_retry_with_the_same_key_and_body_replays_the_first_201_and_creates_nothing(
    api: Api,
) -> None:
    first = _post(api, TASKS, {"a": 10, "b": 20, "priority": 1})
    api.run_published()  # the task finishes before the client retries

    again = _post(api, TASKS, {"a": 10, "b": 20, "priority": 1})

    assert first.status_code == again.status_code == 201
    assert again.headers["location"] == first.headers["location"] == f"{TASKS}/1"
    assert again.content == first.content
    assert again.json()["status"] == "queued"  # the original response, not the task as it is now
    assert api.client.get(f"{TASKS}/1").json()["status"] == "success"
    assert list(api.uow.store.rows) == [1]
    assert len(api.queue.published) == 1


def test_the_same_request_spelled_otherwise_is_the_same_request(api: Api) -> None:
    first = _post(api, TASKS, {"a": 1, "b": 2})
    reordered = api.client.post(
        TASKS,
        content=b'{ "priority" : 2, "b": 2, "a": 1 }',
        headers={**KEY, "content-type": "application/json"},
    )
    bare_key = _post(
        api, TASKS, {"a": 1, "b": 2}, {"Idempotency-Key": KEY["Idempotency-Key"][1:-1]}
    )

    assert reordered.status_code == bare_key.status_code == 201
    assert reordered.content == bare_key.content == first.content
    assert list(api.uow.store.rows) == [1]


def test_the_same_key_with_another_body_is_422_and_creates_nothing(api: Api) -> None:
    _post(api, TASKS, {"a": 1, "b": 2})

    response = _post(api, TASKS, {"a": 1, "b": 3})

    body = assert_problem(response, 422, "idempotency-key-reused")
    assert [e["loc"] for e in body["errors"]] == [["header", "Idempotency-Key"]]
    assert list(api.uow.store.rows) == [1]


def test_the_same_key_on_the_other_create_route_is_422(api: Api) -> None:
    _post(api, TASKS, {"a": 1, "b": 2})

    response = _post(api, BATCH, {"pairs": [{"a": 1, "b": 2}]})

    assert_problem(response, 422, "idempotency-key-reused")
    assert list(api.uow.store.rows) == [1]


def test_a_batch_retry_replays_the_first_201(api: Api) -> None:
    body = {"pairs": [{"a": 1, "b": 2}, {"a": 2**63 - 1, "b": 2**63 - 1}], "priority": 1}
    first = _post(api, BATCH, body)
    api.run_published()

    again = _post(api, BATCH, body)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content and again.headers["location"] == f"{TASKS}/1"
    assert list(api.uow.store.rows) == [1]


def test_different_keys_create_different_tasks(api: Api) -> None:
    ids = {
        _post(api, TASKS, {"a": 1, "b": 2}, {"Idempotency-Key": key}).json()["id"]
        for key in ("k1", "k2", '"k3"')
    }
    assert ids == {1, 2, 3}


def test_a_refused_request_records_nothing_under_its_key(api: Api) -> None:
    too_big = {"pairs": [{"a": 1, "b": 1}] * 6}
    assert_problem(_post(api, BATCH, too_big), 413, "batch-too-large")

    accepted = _post(api, BATCH, {"pairs": [{"a": 1, "b": 1}]})

    assert accepted.status_code == 201


def test_a_key_is_free_again_once_its_time_is_up(api: Api) -> None:
    _post(api, TASKS, {"a": 1, "b": 2})
    api.clock.advance(TEST_SETTINGS.idempotency_key_ttl_seconds + 1)

    response = _post(api, TASKS, {"a": 5, "b": 5})

    assert response.status_code == 201 and response.json()["id"] == 2


def test_the_key_time_to_live_is_the_setting(api: Api) -> None:
    short = build_api(TEST_SETTINGS.model_copy(update={"idempotency_key_ttl_seconds": 10}))
    try:
        _post(short, TASKS, {"a": 1, "b": 2})
        short.clock.advance(9)
        assert_problem(_post(short, TASKS, {"a": 5, "b": 5}), 422, "idempotency-key-reused")
        short.clock.advance(1)
        assert _post(short, TASKS, {"a": 5, "b": 5}).status_code == 201
    finally:
        short.container.unwire()


@pytest.mark.parametrize(
    "key", ["", " x", "a\\b", '"unterminated', "é", "x" * 256, '"' + "x" * 256 + '"', 'a"b']
)
def test_a_malformed_key_is_422(api: Api, key: str) -> None:
    response = api.client.post(
        TASKS, json={"a": 1, "b": 2}, headers={"Idempotency-Key": key.encode("utf-8")}
    )

    assert_validation_problem(response, "header", "Idempotency-Key")
    assert api.uow.store.rows == {}


class _Slow:
    """CreateTask that takes a while, so a retry arrives while the first request is stored."""

    def __init__(self, real: CreateTask) -> None:
        self.real = real

    def execute_all(self, requests: Sequence[CreateTaskRequest]) -> list[Outcome]:
        time.sleep(0.3)
        return self.real.execute_all(requests)


async def _post_twice_at_once(api: Api, body: dict[str, int]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://taskman") as client:
        first = asyncio.create_task(client.post(TASKS, json=body, headers=KEY))
        await asyncio.sleep(0.1)  # the first is being stored
        second = await client.post(TASKS, json=body, headers=KEY)
        return [await first, second]


def test_a_retry_while_the_first_is_in_flight_is_409_and_only_one_task_exists(api: Api) -> None:
    api.container.create_task.override(providers.Object(_Slow(api.container.create_task())))

    first, second = asyncio.run(_post_twice_at_once(api, {"a": 1, "b": 2, "priority": 1}))

    assert first.status_code == 201
    body = assert_problem(second, 409, "idempotency-key-in-flight")
    assert "still being processed" in body["detail"]
    assert second.headers["retry-after"] == "1"
    assert list(api.uow.store.rows) == [1]
    # Once the first has answered, the key replays it.
    replay = api.client.post(TASKS, json={"a": 1, "b": 2, "priority": 1}, headers=KEY)
    assert replay.status_code == 201 and replay.content == first.content


async def _post_all(api: Api, posts: list[tuple[dict[str, int], str]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://taskman") as client:
        return await asyncio.gather(
            *(client.post(TASKS, json=b, headers={"Idempotency-Key": k}) for b, k in posts)
        )


def test_grouped_creates_keep_each_key_with_its_own_task(api: Api) -> None:
    api.create(a=100, b=0)  # task 1, unkeyed
    posts = [({"a": i, "b": 0, "priority": 1}, f"key-{i}") for i in range(20)]

    created = asyncio.run(_post_all(api, posts))
    replayed = asyncio.run(_post_all(api, posts))

    assert [r.status_code for r in created + replayed] == [201] * 40
    assert [r.json()["a"] for r in created] == list(range(20))
    assert [r.content for r in replayed] == [r.content for r in created]
    assert len(api.uow.store.rows) == 21
    assert api.uow.commits < 20, "keyed creates were not grouped"
    assert all(t.status is TaskStatus.QUEUED for t in api.uow.store.rows.values())

"""Concurrent POST /tasks share transactions (entrypoints/api/create_groups.py), each request
still answered with its own task, and a failing group fails only its own requests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import httpx
from dependency_injector import providers

from application.ports import StoreUnavailable
from application.use_cases import CreateTask, CreateTaskRequest
from domain.errors import DomainError
from domain.task import Task
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem

CONCURRENT = 30


async def _post_all(api: Api, bodies: Sequence[dict[str, int]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://taskman") as client:
        return await asyncio.gather(*(client.post("/api/v1/tasks", json=b) for b in bodies))


def test_concurrent_creates_each_get_their_own_task_in_fewer_transactions(api: Api) -> None:
    bodies = [{"a": i, "b": 1000, "priority": 1 + i % 3} for i in range(CONCURRENT)]

    responses = asyncio.run(_post_all(api, bodies))

    assert [r.status_code for r in responses] == [201] * CONCURRENT
    created = [r.json() for r in responses]
    assert [(t["a"], t["priority"]) for t in created] == [(b["a"], b["priority"]) for b in bodies]
    assert len({t["id"] for t in created}) == CONCURRENT
    for response, task in zip(responses, created, strict=True):
        assert response.headers["location"] == f"/api/v1/tasks/{task['id']}"
        assert api.uow.stored(task["id"]).a == task["a"]
    assert api.uow.commits < CONCURRENT // 2, "concurrent creates were not grouped"
    assert sorted(d.task_id for d in api.queue.published) == sorted(
        t["id"] for t in created if t["priority"] == 1
    )


class _FailingWhileTold:
    """CreateTask whose store is unreachable while `failing` is set."""

    def __init__(self, real: CreateTask) -> None:
        self.real = real
        self.failing = True

    def execute_all(self, requests: Sequence[CreateTaskRequest]) -> list[Task | DomainError]:
        if self.failing:
            raise StoreUnavailable("the task store is unreachable: connection refused")
        return self.real.execute_all(requests)


def test_a_group_the_store_refuses_fails_each_of_its_requests_and_the_next_goes_through(
    api: Api,
) -> None:
    create = _FailingWhileTold(api.container.create_task())
    api.container.create_task.override(providers.Object(create))
    bodies = [{"a": i, "b": 1, "priority": 1} for i in range(5)]

    refused = asyncio.run(_post_all(api, bodies))

    for response in refused:
        assert_problem(response, 503, "unavailable")
    assert api.uow.commits == 0 and api.queue.published == []

    create.failing = False
    (accepted,) = asyncio.run(_post_all(api, [{"a": 40, "b": 2, "priority": 1}]))
    assert accepted.status_code == 201
    assert api.uow.stored(accepted.json()["id"]).a == 40


class _Slow:
    """CreateTask that takes a while, so a second event loop's request arrives meanwhile."""

    def __init__(self, real: CreateTask) -> None:
        self.real = real

    def execute_all(self, requests: Sequence[CreateTaskRequest]) -> list[Task | DomainError]:
        time.sleep(0.2)
        return self.real.execute_all(requests)


def test_requests_on_two_event_loops_at_once_are_each_answered(api: Api) -> None:
    # Under uvicorn one loop serves a process; a test client may run a loop per request.
    api.container.create_task.override(providers.Object(_Slow(api.container.create_task())))
    answers: list[httpx.Response] = []

    def post_on_a_loop_of_its_own(a: int) -> None:
        answers.extend(asyncio.run(_post_all(api, [{"a": a, "b": 1, "priority": 1}])))

    threads = [
        threading.Thread(target=post_on_a_loop_of_its_own, args=(a,), daemon=True) for a in (1, 2)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads), "a request was never answered"
    assert sorted((r.status_code, r.json()["a"]) for r in answers) == [(201, 1), (201, 2)]

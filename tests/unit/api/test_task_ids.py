"""A task id in a path is written one way only: decimal digits, no sign, no leading zero.
Anything else is one 422 on every route; a well-formed id naming no task is 404 on every route,
0 and ids beyond the int64 range included (issue 10, part 6)."""

from __future__ import annotations

import httpx
import pytest

from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem, assert_validation_problem

# (method, path after the id): every route that takes a task id.
ROUTES = [("GET", ""), ("PUT", ""), ("POST", "/retry"), ("POST", "/cancel")]

# Each of these used to answer for task 1 or task 10 (lax integer parsing), or for nothing.
MALFORMED = [
    "01",
    "+1",
    "1.0",
    "1_0",
    "%201",
    "1%20",
    "-1",
    "00",
    "0x1",
    "1e1",
    "abc",
    "\uff11",  # a full-width digit one: int() would read it as 1
]
NAMING_NO_TASK = ["0", "999999", str(2**63 - 1), str(2**63), "9" * 30, "9" * 5000]


@pytest.fixture
def api_with_tasks_1_to_10(api: Api) -> Api:
    for a in range(10):
        api.create(a=a, b=1)
    return api


def _states(api: Api) -> list[tuple[object, ...]]:
    return [(t.status, t.priority, t.version) for t in map(api.uow.stored, (1, 10))]


def _call(api: Api, method: str, task_id: str, suffix: str) -> httpx.Response:
    return api.client.request(method, f"/api/v1/tasks/{task_id}{suffix}", json={"priority": 1})


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
@pytest.mark.parametrize("task_id", MALFORMED)
def test_a_malformed_id_is_422_on_every_route_and_changes_nothing(
    api_with_tasks_1_to_10: Api, method: str, suffix: str, task_id: str
) -> None:
    api = api_with_tasks_1_to_10
    before = _states(api)

    response = _call(api, method, task_id, suffix)

    body = assert_validation_problem(response, "path", "task_id")
    assert body["detail"].startswith("path.task_id:")
    assert _states(api) == before


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
@pytest.mark.parametrize("task_id", NAMING_NO_TASK, ids=lambda t: t if len(t) < 25 else "huge")
def test_a_well_formed_id_naming_no_task_is_404_on_every_route(
    api_with_tasks_1_to_10: Api, method: str, suffix: str, task_id: str
) -> None:
    response = _call(api_with_tasks_1_to_10, method, task_id, suffix)

    body = assert_problem(response, 404, "task-not-found")
    assert body["detail"].startswith(f"task {task_id[:30]}")
    assert len(response.text) < 500  # a huge id is not echoed back whole


@pytest.mark.parametrize(
    ("method", "suffix", "status"),
    [("GET", "", 200), ("PUT", "", 200), ("POST", "/retry", 409), ("POST", "/cancel", 200)],
)
def test_a_well_formed_id_still_answers_for_its_task(
    api_with_tasks_1_to_10: Api, method: str, suffix: str, status: int
) -> None:
    response = _call(api_with_tasks_1_to_10, method, "10", suffix)

    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["id"] == 10

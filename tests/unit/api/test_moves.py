"""PUT /tasks/{id} (priority), POST /tasks/{id}/retry and /cancel: the state machine over HTTP."""

from typing import Any

import pytest

from domain.errors import PermanentTaskFailure
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import T0, assert_problem, assert_validation_problem, task_json


def _failed_task(api: Api) -> None:
    api.arithmetic.failures.append(PermanentTaskFailure("boom"))
    api.create(priority=1)
    api.run_published()


def test_changing_the_priority_of_a_queued_task_reschedules_it_from_now(api: Api) -> None:
    api.create(priority=3)
    api.clock.advance(2)

    response = api.client.put("/api/v1/tasks/1", json={"priority": 2})

    assert response.status_code == 200
    assert response.json() == task_json(
        priority=2,
        scheduled_for="2026-01-01T12:00:07+00:00",
        updated_at="2026-01-01T12:00:02+00:00",
    )


def test_raising_a_queued_task_to_high_publishes_it_on_the_high_queue(api: Api) -> None:
    api.create(priority=3)

    api.client.put("/api/v1/tasks/1", json={"priority": 1})
    api.run_published()

    assert api.client.get("/api/v1/tasks/1").json()["result"] == 3


def test_changing_the_priority_of_a_succeeded_task_is_409(api: Api) -> None:
    api.create(priority=1)
    api.run_published()

    response = api.client.put("/api/v1/tasks/1", json={"priority": 3})

    assert_problem(response, 409, "illegal-transition")
    assert api.client.get("/api/v1/tasks/1").json()["priority"] == 1


def test_changing_the_priority_of_a_cancelled_task_is_409(api: Api) -> None:
    api.create()
    api.client.post("/api/v1/tasks/1/cancel")

    response = api.client.put("/api/v1/tasks/1", json={"priority": 1})

    assert_problem(response, 409, "illegal-transition")


def test_changing_the_priority_of_an_unknown_task_is_404(api: Api) -> None:
    assert_problem(api.client.put("/api/v1/tasks/7", json={"priority": 1}), 404, "task-not-found")


@pytest.mark.parametrize(
    "body",
    [
        {"priority": None},
        {},
        {"priority": 0},
        {"priority": 4},
        {"priority": "1"},
        {"priority": True},
        {"priority": 1.0},
        {"priority": 1, "a": 5},
        [1],
    ],
    ids=repr,
)
def test_a_bad_priority_body_is_422_and_changes_nothing(api: Api, body: Any) -> None:
    api.create()

    response = api.client.put("/api/v1/tasks/1", json=body)

    assert_validation_problem(response, "body")
    assert api.client.get("/api/v1/tasks/1").json() == task_json()


def test_retrying_a_failed_task_queues_it_with_a_fresh_budget(api: Api) -> None:
    _failed_task(api)
    api.clock.advance(60)

    response = api.client.post("/api/v1/tasks/1/retry")

    assert response.status_code == 200
    assert response.json() == task_json(
        priority=1,
        status="queued",
        attempts=0,
        error_message=None,
        started_at=T0,
        finished_at=None,
        scheduled_for="2026-01-01T12:01:00+00:00",
        updated_at="2026-01-01T12:01:00+00:00",
    )


def test_a_retried_task_runs_again_and_succeeds(api: Api) -> None:
    _failed_task(api)

    api.client.post("/api/v1/tasks/1/retry")
    api.run_published()

    body = api.client.get("/api/v1/tasks/1").json()
    assert (body["status"], body["result"], body["attempts"]) == ("success", 3, 1)


@pytest.mark.parametrize("run_first", [False, True], ids=["queued", "succeeded"])
def test_retrying_a_task_that_has_not_failed_is_409(api: Api, run_first: bool) -> None:
    api.create(priority=1)
    if run_first:
        api.run_published()

    body = assert_problem(api.client.post("/api/v1/tasks/1/retry"), 409, "illegal-transition")
    assert "only failed tasks are retried" in body["detail"]


def test_retrying_an_unknown_task_is_404(api: Api) -> None:
    assert_problem(api.client.post("/api/v1/tasks/3/retry"), 404, "task-not-found")


def test_cancelling_a_queued_task_finishes_it(api: Api) -> None:
    api.create()
    api.clock.advance(1)

    response = api.client.post("/api/v1/tasks/1/cancel")

    assert response.status_code == 200
    later = "2026-01-01T12:00:01+00:00"
    assert response.json() == task_json(status="cancelled", finished_at=later, updated_at=later)


def test_a_cancelled_task_never_runs(api: Api) -> None:
    api.create(priority=1)
    api.client.post("/api/v1/tasks/1/cancel")

    api.run_published()

    assert api.client.get("/api/v1/tasks/1").json()["status"] == "cancelled"


def test_cancelling_twice_is_409(api: Api) -> None:
    api.create()
    api.client.post("/api/v1/tasks/1/cancel")

    body = assert_problem(api.client.post("/api/v1/tasks/1/cancel"), 409, "illegal-transition")
    assert "only queued tasks are cancelled" in body["detail"]


def test_cancelling_an_unknown_task_is_404(api: Api) -> None:
    assert_problem(api.client.post("/api/v1/tasks/3/cancel"), 404, "task-not-found")

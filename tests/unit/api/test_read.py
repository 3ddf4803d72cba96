"""GET /tasks/{id} and GET /tasks: exact bodies, pagination, filters, bad ids and filters."""

from typing import Any

import pytest

from domain.errors import PermanentTaskFailure
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import T0, assert_problem, assert_validation_problem, task_json


def test_get_answers_the_task(api: Api) -> None:
    api.create(a=5, b=6, priority=3)

    response = api.client.get("/api/v1/tasks/1")

    assert response.status_code == 200
    assert response.json() == task_json(
        a=5, b=6, priority=3, scheduled_for="2026-01-01T12:00:10+00:00"
    )


def test_get_an_unknown_task_is_404(api: Api) -> None:
    response = api.client.get("/api/v1/tasks/99")

    body = assert_problem(response, 404, "task-not-found")
    assert body["detail"] == "task 99 does not exist"


def test_list_without_filters_answers_every_task_newest_first(api: Api) -> None:
    for a in range(3):
        api.create(a=a)

    response = api.client.get("/api/v1/tasks")

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert (body["limit"], body["offset"]) == (50, 0)
    assert [t["id"] for t in body["items"]] == [3, 2, 1]
    assert body["items"][2] == task_json(id=1, a=0)


def test_list_of_nothing_is_an_empty_page(api: Api) -> None:
    assert api.client.get("/api/v1/tasks").json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "next": None,
    }


def test_list_pages_with_limit_and_offset(api: Api) -> None:
    for a in range(5):
        api.create(a=a)

    body = api.client.get("/api/v1/tasks", params={"limit": 2, "offset": 1}).json()

    assert [t["id"] for t in body["items"]] == [4, 3]
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)


def test_an_offset_past_the_end_is_an_empty_page_with_the_total(api: Api) -> None:
    api.create()

    body = api.client.get("/api/v1/tasks", params={"offset": 10**9}).json()

    assert (body["items"], body["total"]) == ([], 1)


def _mixed_tasks(api: Api) -> None:
    """1 single p2 queued; 2 batch p1 success; 3 single p1 failed; 4 single p3 cancelled."""
    api.create(a=1, b=1)
    api.client.post("/api/v1/tasks/batch", json={"pairs": [{"a": 1, "b": 1}], "priority": 1})
    api.run_published()
    api.arithmetic.failures.append(PermanentTaskFailure("boom"))
    api.create(priority=1)
    api.run_published()
    api.create(priority=3)
    api.client.post("/api/v1/tasks/4/cancel")


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({"status": "queued"}, [1]),
        ({"status": "success"}, [2]),
        ({"status": "failed"}, [3]),
        ({"status": "cancelled"}, [4]),
        ({"status": "running"}, []),
        ({"type": "batch"}, [2]),
        ({"type": "single"}, [4, 3, 1]),
        ({"priority": 1}, [3, 2]),
        ({"priority": "3"}, [4]),
        ({"type": "single", "priority": 1}, [3]),
        ({"status": "success", "type": "single"}, []),
        ({}, [4, 3, 2, 1]),
    ],
)
def test_list_filters_combine(api: Api, params: dict[str, Any], ids: list[int]) -> None:
    _mixed_tasks(api)

    body = api.client.get("/api/v1/tasks", params=params).json()

    assert [t["id"] for t in body["items"]] == ids
    assert body["total"] == len(ids)


def test_a_failed_task_shows_its_error(api: Api) -> None:
    _mixed_tasks(api)

    body = api.client.get("/api/v1/tasks/3").json()

    assert body == task_json(
        id=3,
        priority=1,
        status="failed",
        attempts=1,
        error_message="boom",
        scheduled_for=T0,
        started_at=T0,
        finished_at=T0,
    )


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"status": "done"}, "status"),
        ({"status": "QUEUED"}, "status"),
        ({"type": "triple"}, "type"),
        ({"priority": 0}, "priority"),
        ({"priority": 4}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 10**9 + 1}, "offset"),
        ({"offset": 2**64}, "offset"),
        ({"offset": "1e400"}, "offset"),
        ({"before_id": 0}, "before_id"),
        ({"before_id": -1}, "before_id"),
        ({"before_id": 2**63}, "before_id"),
        ({"before_id": "ten"}, "before_id"),
        ({"created_after": "2026-12-01T10:00:00"}, "created_after"),  # no offset
        ({"created_after": "2026-12-01"}, "created_after"),
        ({"created_after": "1764583200"}, "created_after"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-02-30T10:00:00Z"}, "created_before"),
        ({"created_before": "2026-12-01T24:00:00Z"}, "created_before"),
        ({"created_before": "2026-12-01 10:00:00Z"}, "created_before"),
        ({"created_before": "9999-12-31T23:59:59-05:00"}, "created_before"),  # past year 9999
    ],
)
def test_a_bad_filter_or_page_is_422(api: Api, params: dict[str, Any], where: str) -> None:
    response = api.client.get("/api/v1/tasks", params=params)

    assert_validation_problem(response, "query", where)


def test_the_page_bounds_themselves_are_accepted(api: Api) -> None:
    body = api.client.get("/api/v1/tasks", params={"limit": 1000, "offset": 10**9}).json()

    assert (body["limit"], body["offset"]) == (1000, 10**9)


def test_a_cursor_walk_visits_every_match_once_newest_first(api: Api) -> None:
    for a in range(7):
        api.create(a=a, priority=1 + a % 2)
    seen: list[int] = []
    params: dict[str, Any] = {"priority": 1, "limit": 2}
    while True:
        response = api.client.get("/api/v1/tasks", params=params)
        body = response.json()
        assert body["total"] == 4
        seen += [t["id"] for t in body["items"]]
        if body["next"] is None:
            assert "link" not in response.headers
            break
        assert body["next"] == body["items"][-1]["id"]
        assert response.headers["link"] == (
            f"<http://testserver/api/v1/tasks?priority=1&limit=2&before_id={body['next']}>; "
            'rel="next"'
        )
        params["before_id"] = body["next"]
    assert seen == [7, 5, 3, 1]


def test_an_offset_page_names_its_next_page_by_cursor_without_the_offset(api: Api) -> None:
    for a in range(5):
        api.create(a=a)

    response = api.client.get("/api/v1/tasks", params={"limit": 2, "offset": 1})

    assert response.json()["next"] == 3
    assert response.headers["link"] == (
        '<http://testserver/api/v1/tasks?limit=2&before_id=3>; rel="next"'
    )


def test_the_last_full_page_has_no_next(api: Api) -> None:
    for a in range(4):
        api.create(a=a)

    response = api.client.get("/api/v1/tasks", params={"limit": 2, "before_id": 3})

    assert [t["id"] for t in response.json()["items"]] == [2, 1]
    assert response.json()["next"] is None
    assert "link" not in response.headers


def test_list_by_creation_time_combines_with_filters_and_cursor(api: Api) -> None:
    for a in range(6):  # one a minute, from 12:00:00
        api.create(a=a, priority=1 + a % 2)
        api.clock.advance(60)
    params: dict[str, Any] = {
        "created_after": "2026-01-01T12:01:00Z",
        "created_before": "2026-01-01T13:04:00+01:00",  # 12:04 UTC, excluded
    }

    every = api.client.get("/api/v1/tasks", params=params).json()
    high = api.client.get("/api/v1/tasks", params={**params, "priority": 1}).json()
    first = api.client.get("/api/v1/tasks", params={**params, "limit": 2})

    assert [t["id"] for t in every["items"]] == [4, 3, 2] and every["total"] == 3
    assert [t["id"] for t in high["items"]] == [3] and high["total"] == 1
    assert first.json()["next"] == 3
    assert first.headers["link"] == (
        "<http://testserver/api/v1/tasks?created_after=2026-01-01T12%3A01%3A00Z&"
        "created_before=2026-01-01T13%3A04%3A00%2B01%3A00&limit=2&before_id=3>; "
        'rel="next"'
    )
    rest = api.client.get(first.headers["link"].split(";")[0].strip("<>")).json()
    assert [t["id"] for t in rest["items"]] == [2] and rest["next"] is None
    since = api.client.get("/api/v1/tasks", params={"created_after": "2026-01-01T12:05:00.5Z"})
    assert since.json() == {"items": [], "total": 0, "limit": 50, "offset": 0, "next": None}

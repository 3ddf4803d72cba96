"""What the API's bodies look like, for exact assertions."""

from typing import Any

import httpx

T0 = "2026-01-01T12:00:00+00:00"  # tests.fakes.EPOCH as the API writes it


def task_json(**fields: Any) -> dict[str, Any]:
    """A new single task created at the fake clock's epoch, with `fields` changed."""
    return {
        "id": 1,
        "type": "single",
        "status": "queued",
        "priority": 2,
        "a": 1,
        "b": 2,
        "result": None,
        "pairs": None,
        "results": None,
        "created_at": T0,
        "started_at": None,
        "finished_at": None,
        "scheduled_for": "2026-01-01T12:00:05+00:00",
        "attempts": 0,
        "max_attempts": 3,
        "error_message": None,
        "updated_at": T0,
        **fields,
    }


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    """The response is an RFC 9457 problem of this status (and of this kind, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    expected_type = f"urn:taskman:problem:{slug}" if slug else "about:blank"
    assert body["type"] == expected_type
    assert "Traceback" not in response.text
    return body


def assert_validation_problem(response: httpx.Response, *where: str | int) -> dict:
    """A 422 whose errors name the invalid part of the request (`where` is the start of a loc)."""
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"], body
    if where:
        locs = [tuple(error["loc"][: len(where)]) for error in body["errors"]]
        assert tuple(where) in locs, body["errors"]
    return body

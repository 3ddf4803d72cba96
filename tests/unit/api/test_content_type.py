"""A body that is not declared JSON is refused with a 415 problem naming the Content-Type header,
before anything is validated or stored; a request without a body is left to validation."""

from typing import Any

import pytest

from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem, assert_validation_problem

TASK = b'{"a": 1, "b": 2, "priority": 1}'
BODIES = {
    ("post", "/api/v1/tasks"): TASK,
    ("post", "/api/v1/tasks/batch"): b'{"pairs": [{"a": 1, "b": 2}], "priority": 1}',
    ("put", "/api/v1/tasks/1"): b'{"priority": 1}',
}
NOT_JSON = [
    None,  # no Content-Type header at all
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "",
]


def _send(api: Api, method: str, path: str, content: bytes, content_type: str | None) -> Any:
    headers = {} if content_type is None else {"content-type": content_type}
    return api.client.request(method, path, content=content, headers=headers)


@pytest.mark.parametrize("content_type", NOT_JSON, ids=repr)
@pytest.mark.parametrize(("method", "path"), list(BODIES), ids=lambda value: str(value))
def test_a_body_not_declared_json_is_415_naming_the_header(
    api: Api, method: str, path: str, content_type: str | None
) -> None:
    existing = api.create(priority=3)

    response = _send(api, method, path, BODIES[(method, path)], content_type)

    body = assert_problem(response, 415)
    assert body["title"] == "Unsupported Media Type"
    assert "Content-Type" in body["detail"] and "application/json" in body["detail"]
    assert response.headers["accept"] == "application/json"
    if method == "post":
        assert response.headers["accept-post"] == "application/json"
    # Nothing changed: no new task, and the existing one kept its priority.
    assert list(api.uow.store.rows) == [existing["id"]]
    assert api.client.get(f"/api/v1/tasks/{existing['id']}").json() == existing


def test_the_detail_says_what_the_request_sent(api: Api) -> None:
    plain = _send(api, "post", "/api/v1/tasks", TASK, "text/plain")
    missing = _send(api, "post", "/api/v1/tasks", TASK, None)

    assert "'text/plain'" in plain.json()["detail"]
    assert "has none" in missing.json()["detail"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "x/y+json"],
)
def test_json_with_parameters_or_in_any_case_is_taken(api: Api, content_type: str) -> None:
    response = _send(api, "post", "/api/v1/tasks", TASK, content_type)

    if content_type == "x/y+json":  # +json only under application/: not JSON to FastAPI either
        assert_problem(response, 415)
    else:
        assert response.status_code == 201, response.text


def test_a_request_without_a_body_is_left_to_validation(api: Api) -> None:
    response = api.client.post("/api/v1/tasks")

    assert_validation_problem(response, "body")


def test_routes_without_a_body_take_any_content_type(api: Api) -> None:
    task = api.create(priority=3)

    response = api.client.post(
        f"/api/v1/tasks/{task['id']}/cancel", headers={"content-type": "text/plain"}
    )

    assert response.status_code == 200, response.text

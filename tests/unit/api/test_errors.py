"""Errors nobody asked for: unknown routes and methods, an unreachable store or broker, a bug.
Each is a problem-details body, and none reveals a stack trace."""

from collections.abc import Callable

import pytest
from dependency_injector import providers
from fastapi.testclient import TestClient

from application.ports import StoreUnavailable
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem


def test_an_unknown_route_is_a_404_problem(api: Api) -> None:
    body = assert_problem(api.client.get("/api/v1/nothing-here"), 404)

    assert body["detail"] == "GET /api/v1/nothing-here: not found"


def test_an_unknown_method_is_a_405_problem_with_allow(api: Api) -> None:
    response = api.client.delete("/api/v1/tasks/1")

    assert_problem(response, 405)
    # Starlette names the methods of the first route matching the path only.
    assert "GET" in response.headers["allow"]


def test_a_body_streamed_past_the_limit_is_413(api: Api) -> None:
    chunks = (b'{"pairs": [' + b'{"a": 1, "b": 1},' * 1000 for _ in range(10))

    response = api.client.post(
        "/api/v1/tasks/batch", content=chunks, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413)


class _IntegrityError(Exception):
    """A driver's error the store adapter does not translate: a query that is wrong (a bug)."""


class _Exploding:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def execute(self, *_: object) -> None:
        raise self.error


def _failing(api: Api, error: Exception) -> TestClient:
    api.container.get_task.override(providers.Object(_Exploding(error)))
    # Starlette re-raises after answering (so servers log it); the client must not.
    return TestClient(api.app, raise_server_exceptions=False)


def test_an_unreachable_store_is_503(api: Api) -> None:
    error = StoreUnavailable("the task store is unreachable: connection refused")
    response = _failing(api, error).get("/api/v1/tasks/1")

    body = assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"] == "5"
    assert "unreachable" in body["detail"]
    assert "refused" not in response.text


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: RuntimeError("secret internals at 0xdeadbeef"),
        lambda: _IntegrityError("INSERT secret: duplicate key (secret constraint)"),
    ],
    ids=["bug", "query-error"],
)
def test_anything_unforeseen_is_a_500_problem_that_reveals_nothing(
    api: Api, make_error: Callable[[], Exception]
) -> None:
    response = _failing(api, make_error()).get("/api/v1/tasks/1")

    body = assert_problem(response, 500, "internal")
    assert "secret" not in response.text
    assert body["detail"] == "an unexpected error occurred; it has been logged"

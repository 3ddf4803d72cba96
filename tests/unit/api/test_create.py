"""POST /tasks and POST /tasks/batch: acceptance, strict operands, batch limits, bad bodies."""

import json
from typing import Any

import pytest

from tests.unit.api.conftest import MAX_BATCH_PAIRS, Api
from tests.unit.api.shapes import T0, assert_problem, assert_validation_problem, task_json

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def test_create_answers_201_with_the_task_and_its_location(api: Api) -> None:
    response = api.client.post("/api/v1/tasks", json={"a": 10, "b": 20, "priority": 1})

    assert response.status_code == 201
    assert response.headers["location"] == "/api/v1/tasks/1"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == task_json(a=10, b=20, priority=1, scheduled_for=T0)
    assert api.uow.stored(1).a == 10


def test_priority_defaults_to_medium_with_its_delay(api: Api) -> None:
    response = api.client.post("/api/v1/tasks", json={"a": 1, "b": 2})

    assert response.json() == task_json(priority=2, scheduled_for="2026-01-01T12:00:05+00:00")


def test_the_location_serves_the_created_task(api: Api) -> None:
    created = api.client.post("/api/v1/tasks", json={"a": 3, "b": 4})

    fetched = api.client.get(created.headers["location"])

    assert fetched.json() == created.json()


def test_a_high_priority_task_runs_and_shows_its_sum(api: Api) -> None:
    api.create(a=10, b=20, priority=1)
    api.run_published()

    body = api.client.get("/api/v1/tasks/1").json()

    assert body["status"] == "success"
    assert body["result"] == 30
    assert body["attempts"] == 1
    assert body["finished_at"] == T0


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (2**62, 2**62, 2**63),
        (INT64_MAX, INT64_MAX, 2**64 - 2),
        (INT64_MIN, INT64_MIN, -(2**64)),
    ],
)
def test_sums_beyond_64_bits_are_exact_in_json(api: Api, a: int, b: int, expected: int) -> None:
    api.create(a=a, b=b, priority=1)
    api.run_published()

    response = api.client.get("/api/v1/tasks/1")

    assert response.json()["result"] == expected
    assert f'"result":{expected}' in response.text


def test_create_batch_answers_201_with_pairs_in_order(api: Api) -> None:
    response = api.client.post(
        "/api/v1/tasks/batch", json={"pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}
    )

    assert response.status_code == 201
    assert response.headers["location"] == "/api/v1/tasks/1"
    assert response.json() == task_json(
        type="batch", a=None, b=None, pairs=[{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    )


def test_a_batch_runs_and_shows_every_sum_in_order(api: Api) -> None:
    pairs = [{"a": INT64_MAX, "b": INT64_MAX}, {"a": -5, "b": 2}, {"a": 0, "b": 0}]
    api.client.post("/api/v1/tasks/batch", json={"pairs": pairs, "priority": 1})
    api.run_published()

    body = api.client.get("/api/v1/tasks/1").json()

    assert body["status"] == "success"
    assert body["results"] == [2**64 - 2, -3, 0]
    assert body["result"] is None


def test_a_batch_at_the_limit_is_accepted(api: Api) -> None:
    pairs = [{"a": i, "b": i} for i in range(MAX_BATCH_PAIRS)]

    response = api.client.post("/api/v1/tasks/batch", json={"pairs": pairs})

    assert response.status_code == 201
    assert len(response.json()["pairs"]) == MAX_BATCH_PAIRS


def test_a_batch_over_the_limit_is_413_and_stores_nothing(api: Api) -> None:
    pairs = [{"a": i, "b": i} for i in range(MAX_BATCH_PAIRS + 1)]

    response = api.client.post("/api/v1/tasks/batch", json={"pairs": pairs})

    body = assert_problem(response, 413, "batch-too-large")
    assert str(MAX_BATCH_PAIRS) in body["detail"]
    assert api.uow.store.rows == {}


def test_a_body_too_large_to_be_any_batch_is_413_before_parsing(api: Api) -> None:
    huge = json.dumps({"pairs": [{"a": 1, "b": 1}] * 100_000})

    response = api.client.post(
        "/api/v1/tasks/batch", content=huge, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413)
    assert api.uow.store.rows == {}


NOT_AN_INT64: list[Any] = [
    True,
    False,
    1.0,
    1.5,
    "1",
    "ten",
    None,
    [1],
    {"value": 1},
    INT64_MAX + 1,
    INT64_MIN - 1,
    10**30,
]


@pytest.mark.parametrize("operand", NOT_AN_INT64, ids=repr)
def test_an_operand_that_is_not_an_int64_is_422(api: Api, operand: Any) -> None:
    response = api.client.post("/api/v1/tasks", json={"a": operand, "b": 1})

    assert_validation_problem(response, "body", "a")
    assert api.uow.store.rows == {}


@pytest.mark.parametrize("operand", NOT_AN_INT64, ids=repr)
def test_a_batch_operand_that_is_not_an_int64_is_422(api: Api, operand: Any) -> None:
    pairs = [{"a": 1, "b": 1}, {"a": 1, "b": operand}]

    response = api.client.post("/api/v1/tasks/batch", json={"pairs": pairs})

    assert_validation_problem(response, "body", "pairs", 1, "b")


def test_the_int64_bounds_themselves_are_accepted(api: Api) -> None:
    response = api.client.post("/api/v1/tasks", json={"a": INT64_MAX, "b": INT64_MIN})

    assert response.status_code == 201
    assert (response.json()["a"], response.json()["b"]) == (INT64_MAX, INT64_MIN)


@pytest.mark.parametrize("priority", [0, 4, -1, "1", True, 1.0, None, [1]], ids=repr)
def test_a_priority_outside_1_to_3_is_422(api: Api, priority: Any) -> None:
    single = api.client.post("/api/v1/tasks", json={"a": 1, "b": 2, "priority": priority})
    batch = api.client.post(
        "/api/v1/tasks/batch", json={"pairs": [{"a": 1, "b": 2}], "priority": priority}
    )

    assert_validation_problem(single, "body", "priority")
    assert_validation_problem(batch, "body", "priority")


@pytest.mark.parametrize(
    "body",
    [
        {"a": 1},
        {"b": 1},
        {},
        {"a": 1, "b": 2, "priorty": 1},
        [1, 2],
        "1 + 2",
        42,
        None,
    ],
    ids=repr,
)
def test_a_body_that_is_not_a_task_is_422(api: Api, body: Any) -> None:
    response = api.client.post("/api/v1/tasks", json=body)

    assert_validation_problem(response, "body")


@pytest.mark.parametrize(
    "body",
    [
        {"pairs": []},
        {"pairs": None},
        {"pairs": {"a": 1, "b": 2}},
        {"pairs": [[1, 2]]},
        {"pairs": [{"a": 1}]},
        {"pairs": [{"a": 1, "b": 2, "c": 3}]},
        {"pairs": [{"a": 1, "b": 2}], "extra": True},
        {"a": 1, "b": 2},
    ],
    ids=repr,
)
def test_a_body_that_is_not_a_batch_is_422(api: Api, body: Any) -> None:
    response = api.client.post("/api/v1/tasks/batch", json=body)

    assert_validation_problem(response, "body")
    assert api.uow.store.rows == {}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"a": 1, "b": ', "application/json"),
        (b"", "application/json"),
        (b"", None),
        (b"\xff\xfe{", "application/json"),
        (b'{"a": ' + b"9" * 5000 + b', "b": 1}', "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"a": NaN, "b": 1}', "application/json"),
        (b'{"a": Infinity, "b": 1}', "application/json"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_malformed_or_missing_json_body_is_422(
    api: Api, content: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}

    response = api.client.post("/api/v1/tasks", content=content, headers=headers)

    assert_validation_problem(response)
    assert api.uow.store.rows == {}


def test_a_validation_problem_lists_every_invalid_field(api: Api) -> None:
    response = api.client.post("/api/v1/tasks", json={"a": "x", "b": 1.5, "priority": 9})

    body = assert_validation_problem(response)
    assert sorted(tuple(e["loc"]) for e in body["errors"]) == [
        ("body", "a"),
        ("body", "b"),
        ("body", "priority"),
    ]
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])

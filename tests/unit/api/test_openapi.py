"""The published contract: every route, an example for every body and every error response."""

from typing import Any

import pytest

from tests.unit.api.conftest import Api

OPERATIONS = {
    ("post", "/api/v1/tasks"),
    ("get", "/api/v1/tasks"),
    ("post", "/api/v1/tasks/batch"),
    ("get", "/api/v1/tasks/{task_id}"),
    ("put", "/api/v1/tasks/{task_id}"),
    ("post", "/api/v1/tasks/{task_id}/retry"),
    ("post", "/api/v1/tasks/{task_id}/cancel"),
    ("get", "/api/v1/health"),
}


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].removeprefix("#/components/schemas/")
    return document["components"]["schemas"][name]  # type: ignore[no-any-return]


def test_every_route_is_documented(document: dict[str, Any]) -> None:
    assert set(_operations(document)) == OPERATIONS


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    bodies = [op["requestBody"] for op in _operations(document).values() if "requestBody" in op]

    assert len(bodies) == 3
    for body in bodies:
        schema = _resolve(document, body["content"]["application/json"]["schema"])
        assert schema["examples"], schema


def test_every_error_response_is_a_problem_with_an_example(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
        assert "503" in errors, key
        for code, response in errors.items():
            content = response["content"]
            assert list(content) == ["application/problem+json"], (key, code)
            example = content["application/problem+json"]["example"]
            assert example["status"] == int(code)
            required = _resolve(document, content["application/problem+json"]["schema"])["required"]
            assert {"type", "title", "status", "detail"} <= set(required)


@pytest.mark.parametrize(
    ("operation", "codes"),
    [
        (("post", "/api/v1/tasks"), {"201", "409", "422", "503"}),
        (("post", "/api/v1/tasks/batch"), {"201", "409", "413", "422", "503"}),
        (("get", "/api/v1/tasks"), {"200", "422", "503"}),
        (("get", "/api/v1/tasks/{task_id}"), {"200", "404", "422", "503"}),
        (("put", "/api/v1/tasks/{task_id}"), {"200", "404", "409", "422", "503"}),
        (("post", "/api/v1/tasks/{task_id}/retry"), {"200", "404", "409", "422", "503"}),
        (("post", "/api/v1/tasks/{task_id}/cancel"), {"200", "404", "409", "422", "503"}),
        (("get", "/api/v1/health"), {"200", "503"}),
    ],
)
def test_each_route_declares_its_statuses(
    document: dict[str, Any], operation: tuple[str, str], codes: set[str]
) -> None:
    assert set(_operations(document)[operation]["responses"]) == codes


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/tasks/batch"])
def test_the_creates_document_the_idempotency_key_and_its_problems(
    document: dict[str, Any], path: str
) -> None:
    operation = _operations(document)[("post", path)]
    (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and not header.get("required", False)
    assert "pattern" in str(header["schema"]) and "409" in header["description"]
    responses = operation["responses"]
    assert responses["409"]["content"]["application/problem+json"]["example"]["type"] == (
        "urn:taskman:problem:idempotency-key-in-flight"
    )
    assert "Idempotency-Key" in responses["422"]["description"]


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if "{task_id}" in op[1]])
def test_task_ids_are_documented_as_plain_decimal_digits(
    document: dict[str, Any], method: str, path: str
) -> None:
    (parameter,) = _operations(document)[(method, path)]["parameters"]
    assert parameter["name"] == "task_id" and parameter["in"] == "path"
    assert parameter["schema"]["pattern"] == "^(0|[1-9][0-9]*)$"
    assert parameter["schema"]["type"] == "string"


def test_internal_fields_are_not_exposed(document: dict[str, Any]) -> None:
    task = document["components"]["schemas"]["TaskOut"]["properties"]

    assert not {"version", "dispatch_no", "published_at", "lease_expires_at"} & set(task)


def test_swagger_ui_is_served(api: Api) -> None:
    response = api.client.get("/docs")

    assert response.status_code == 200
    assert "swagger-ui" in response.text

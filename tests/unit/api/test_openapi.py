"""The published contract: every route, an example for every body and every error response."""

import tomllib
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from domain.task import INT64_MAX, INT64_MIN
from tests.commands import ROOT
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
    ("get", "/api/v1/health/live"),
    ("get", "/api/v1/health/ready"),
    ("get", "/api/v1/tasks/{task_id}/attempts"),
    ("get", "/api/v1/tasks/{task_id}/explain"),
    ("get", "/api/v1/tasks/{task_id}/events"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/console/overview"),
    ("post", "/api/v1/tasks/bulk"),
}
# Asks nothing but the process itself: no error of its own to declare.
NO_ERRORS = {("get", "/api/v1/health/live")}


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


def test_the_document_carries_the_package_version(document: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert document["info"]["version"] == project["version"]


def test_every_route_is_documented(document: dict[str, Any]) -> None:
    assert set(_operations(document)) == OPERATIONS


def test_every_request_body_has_an_example(document: dict[str, Any]) -> None:
    bodies = [op["requestBody"] for op in _operations(document).values() if "requestBody" in op]

    assert len(bodies) == 4
    for body in bodies:
        schema = _resolve(document, body["content"]["application/json"]["schema"])
        assert schema["examples"], schema


def test_every_error_response_is_a_problem_with_an_example(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
        assert ("503" in errors) != (key in NO_ERRORS), key
        for code, response in errors.items():
            content = response["content"]
            assert list(content) == ["application/problem+json"], (key, code)
            example = content["application/problem+json"]["example"]
            assert example["status"] == int(code)
            required = _resolve(document, content["application/problem+json"]["schema"])["required"]
            assert {"type", "title", "status", "detail"} <= set(required)


# Every task route may answer 401 (no or a bad key) and 403 (a key without the scope).
AUTH = ("401", "403")


@pytest.mark.parametrize(
    ("operation", "codes"),
    [
        (("post", "/api/v1/tasks"), {"201", *AUTH, "409", "413", "415", "422", "429", "503"}),
        (("post", "/api/v1/tasks/batch"), {"201", *AUTH, "409", "413", "415", "422", "429", "503"}),
        (("get", "/api/v1/tasks"), {"200", *AUTH, "422", "503"}),
        (("get", "/api/v1/tasks/{task_id}"), {"200", *AUTH, "404", "422", "503"}),
        (
            ("put", "/api/v1/tasks/{task_id}"),
            {"200", *AUTH, "404", "409", "413", "415", "422", "503"},
        ),
        (("post", "/api/v1/tasks/{task_id}/retry"), {"200", *AUTH, "404", "409", "422", "503"}),
        (("post", "/api/v1/tasks/{task_id}/cancel"), {"200", *AUTH, "404", "409", "422", "503"}),
        (("get", "/api/v1/health"), {"200", "503"}),
        (("get", "/api/v1/tasks/{task_id}/attempts"), {"200", *AUTH, "404", "422", "503"}),
        (("get", "/api/v1/tasks/{task_id}/explain"), {"200", *AUTH, "404", "422", "503"}),
        (("get", "/api/v1/tasks/{task_id}/events"), {"200", *AUTH, "404", "422", "503"}),
        (("get", "/api/v1/events"), {"200", *AUTH, "422", "503"}),
        (("get", "/api/v1/console/overview"), {"200", *AUTH, "503"}),
        (("post", "/api/v1/tasks/bulk"), {"200", *AUTH, "413", "415", "422", "503"}),
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
    parameters = _operations(document)[(method, path)]["parameters"]
    (parameter,) = [p for p in parameters if p["in"] == "path"]
    assert parameter["name"] == "task_id" and parameter["in"] == "path"
    assert parameter["schema"]["pattern"] == "^(0|[1-9][0-9]*)$"
    assert parameter["schema"]["type"] == "string"


def test_internal_fields_are_not_exposed(document: dict[str, Any]) -> None:
    task = document["components"]["schemas"]["TaskOut"]["properties"]

    assert not {"version", "dispatch_no", "published_at", "lease_expires_at"} & set(task)


def test_swagger_ui_is_served_from_the_app_not_a_cdn(api: Api) -> None:
    response = api.client.get("/docs")

    assert response.status_code == 200
    assert "swagger-ui" in response.text
    assert "cdn" not in response.text.lower() and "https://" not in response.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        [url] = [part.split('"')[0] for part in response.text.split('"/')[1:] if asset in part]
        fetched = api.client.get("/" + url)
        assert fetched.status_code == 200 and len(fetched.content) > 10_000, url


def test_the_root_redirects_to_the_docs(api: Api) -> None:
    response = api.client.get("/", follow_redirects=False)

    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/docs"


def test_operation_ids_name_the_act(document: dict[str, Any]) -> None:
    ids = {key: op["operationId"] for key, op in _operations(document).items()}

    assert ids == {
        ("post", "/api/v1/tasks"): "createTask",
        ("post", "/api/v1/tasks/batch"): "createBatch",
        ("get", "/api/v1/tasks"): "listTasks",
        ("get", "/api/v1/tasks/{task_id}"): "getTask",
        ("put", "/api/v1/tasks/{task_id}"): "changePriority",
        ("post", "/api/v1/tasks/{task_id}/retry"): "retryTask",
        ("post", "/api/v1/tasks/{task_id}/cancel"): "cancelTask",
        ("get", "/api/v1/health"): "health",
        ("get", "/api/v1/health/live"): "healthLive",
        ("get", "/api/v1/health/ready"): "healthReady",
        ("get", "/api/v1/tasks/{task_id}/attempts"): "getAttempts",
        ("get", "/api/v1/tasks/{task_id}/explain"): "explainTask",
        ("get", "/api/v1/tasks/{task_id}/events"): "taskEvents",
        ("get", "/api/v1/events"): "events",
        ("get", "/api/v1/console/overview"): "consoleOverview",
        ("post", "/api/v1/tasks/bulk"): "bulkMove",
    }


def test_operands_are_int64_with_exact_integer_bounds(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for operand in (
        schemas["CreateTaskBody"]["properties"]["a"],
        schemas["CreateTaskBody"]["properties"]["b"],
        schemas["PairIn"]["properties"]["a"],
    ):
        assert operand["format"] == "int64"
        assert operand["maximum"] == INT64_MAX and type(operand["maximum"]) is int
        assert operand["minimum"] == INT64_MIN and type(operand["minimum"]) is int


def test_every_priority_is_the_one_integer_enum(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Priority"]["type"] == "integer"
    assert schemas["Priority"]["enum"] == [1, 2, 3]
    priority = {"$ref": "#/components/schemas/Priority"}
    for body in ("CreateTaskBody", "CreateBatchBody", "ChangePriorityBody", "TaskOut"):
        assert priority.items() <= schemas[body]["properties"]["priority"].items(), body
    [query] = [
        p
        for p in document["paths"]["/api/v1/tasks"]["get"]["parameters"]
        if p["name"] == "priority"
    ]
    assert priority in query["schema"]["anyOf"]


def test_every_route_with_a_body_declares_413(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        if "requestBody" in operation:
            assert "413" in operation["responses"], key


def _examples(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example the document gives."""
    found = []
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", []):
            found.append((f"schema {name}", {"$ref": f"#/components/schemas/{name}"}, example))
    for key, operation in _operations(document).items():
        for code, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                if "example" in media:
                    found.append((f"{key} {code}", media["schema"], media["example"]))
    return found


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    examples = _examples(document)

    assert len(examples) >= 20
    for where, schema, example in examples:
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = [error.message for error in validator.iter_errors(example)]
        assert not errors, (where, errors)


def test_the_task_routes_declare_the_bearer_scheme_and_health_does_not(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    operations = _operations(document)
    for (method, path), operation in operations.items():
        expected = [] if path.startswith("/api/v1/health") else [{"HTTPBearer": []}]
        assert operation.get("security", []) == expected, (method, path)


@pytest.mark.parametrize(
    "operation",
    [
        ("post", "/api/v1/tasks"),
        ("post", "/api/v1/tasks/batch"),
        ("put", "/api/v1/tasks/{task_id}"),
    ],
)
def test_routes_with_a_body_document_the_content_type_problem(
    document: dict[str, Any], operation: tuple[str, str]
) -> None:
    unsupported = _operations(document)[operation]["responses"]["415"]
    assert "Content-Type" in unsupported["description"]
    assert "Accept" in unsupported["headers"]
    example = unsupported["content"]["application/problem+json"]["example"]
    assert "Content-Type" in example["detail"]

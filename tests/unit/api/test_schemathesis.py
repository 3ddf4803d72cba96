"""Property-based tests of the whole API against its own OpenAPI document, in-process (ASGI):
generated requests, valid (positive) and invalid (negative), never get a server error, and every
response matches the schema declared for its status.

Each operation's strategy is driven by Hypothesis directly rather than through
`schemathesis.pytest.from_fixture`, whose fixture loader breaks on pytest 9 (it reads
`request.node._nodeid`); the API still comes from the `api` fixture, built with fakes."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.unit.api.conftest import Api

OPERATIONS = [
    ("POST", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks/batch"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/{task_id}"),
    ("PUT", "/api/v1/tasks/{task_id}"),
    ("POST", "/api/v1/tasks/{task_id}/retry"),
    ("POST", "/api/v1/tasks/{task_id}/cancel"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/tasks/{task_id}/attempts"),
    ("GET", "/api/v1/tasks/{task_id}/explain"),
    ("GET", "/api/v1/console/overview"),
    ("POST", "/api/v1/tasks/bulk"),
]
EXAMPLES_PER_OPERATION = 20


# GET /health and the console's overview take no input to get wrong: no negative case.
NO_INPUT = ("/health", "/overview")
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and path.endswith(NO_INPUT))
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_the_api_honours_its_schema(api: Api, method: str, path: str, mode: GenerationMode) -> None:
    api.create(a=1, b=2)  # task 1 exists, so the id routes answer more than 404
    operation = schemathesis.openapi.from_asgi("/openapi.json", api.app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same cases on every run: CI must not flake
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def honours_schema(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    honours_schema()

"""OpenAPI for errors: each route declares its problem responses, with an example each, under
`application/problem+json`, and the problem schemas are added to the components."""

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from entrypoints.api.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_BASE,
    Problem,
    ValidationProblem,
)
from entrypoints.api.schemas import HealthProblem

_REF = "#/components/schemas/{model}"


def _example(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


_DESCRIPTIONS = {
    404: "No task has this id.",
    409: "The task's status forbids this move.",
    413: "The batch holds more pairs than the configured limit.",
    422: "The request is invalid (body, path or query).",
    503: "The task store or the broker is unreachable.",
}

_EXAMPLES = {
    404: _example(404, "task-not-found", "Task not found", "task 42 does not exist"),
    409: _example(
        409,
        "illegal-transition",
        "Move not allowed in the task's status",
        "task 42 is success; its priority can no longer change",
    ),
    413: _example(
        413,
        "batch-too-large",
        "Batch too large",
        "a batch holds at most 100000 pairs; this one has 100001",
    ),
    422: _example(
        422,
        "validation-error",
        "Invalid request",
        "body.a: Input should be a valid integer",
        errors=[
            {"loc": ["body", "a"], "msg": "Input should be a valid integer", "type": "int_type"}
        ],
    ),
    503: _example(
        503,
        "unavailable",
        "Service Unavailable",
        "the task store is unreachable; try again shortly",
    ),
}


def error_responses(
    *statuses: int,
    conflict: str | None = None,
    described: dict[int, str] | None = None,
    examples: dict[int, dict[str, Any]] | None = None,
) -> dict[int | str, Any]:
    """The `responses=` of a route that may answer with these problem statuses (503 always);
    `described` and `examples` replace the usual description and example of a status."""
    declared: dict[int | str, Any] = {}
    for status in (*statuses, 503):
        model = ValidationProblem if status == 422 else Problem
        example = dict((examples or {}).get(status, _EXAMPLES[status]))
        if status == 409 and conflict:
            example["detail"] = conflict
        declared[status] = {
            "description": (described or {}).get(status, _DESCRIPTIONS[status]),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": _REF.format(model=model.__name__)},
                    "example": example,
                }
            },
        }
    return declared


def idempotent_create_responses(*statuses: int) -> dict[int | str, Any]:
    """The problem responses of a create route that takes an Idempotency-Key."""
    in_flight = _example(
        409,
        "idempotency-key-in-flight",
        "Request with this idempotency key in progress",
        "a request with idempotency key 'k1' is still being processed; retry shortly",
    )
    return error_responses(
        *statuses,
        409,
        422,
        described={
            409: "A request with this Idempotency-Key is still being processed (retry after "
            "Retry-After seconds).",
            422: "The request is invalid (body or header), or its Idempotency-Key was first "
            "used with another request (`idempotency-key-reused`).",
        },
        examples={409: in_flight},
    )


def health_unavailable_response() -> dict[int | str, Any]:
    example = _example(
        503,
        "unhealthy",
        "Service Unavailable",
        "broker unavailable",
        database="ok",
        broker="unavailable: QueueUnavailable",
        workers=None,
    )
    return {
        503: {
            "description": "The store or the broker did not answer; the failing part is named.",
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": _REF.format(model=HealthProblem.__name__)},
                    "example": example,
                }
            },
        }
    }


def install_problem_schemas(app: FastAPI) -> None:
    """Routes refer to the problem schemas by $ref; put them in the generated document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        _, top = models_json_schema(
            [(m, "serialization") for m in (Problem, ValidationProblem, HealthProblem)],
            ref_template=_REF,
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(top["$defs"])
        return document

    app.openapi = openapi  # type: ignore[method-assign]

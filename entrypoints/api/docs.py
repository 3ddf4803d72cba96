"""OpenAPI for errors: each route declares its problem responses, with an example each, under
`application/problem+json`, and the problem schemas are added to the components."""

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from domain.priority import Priority
from domain.task import INT64_MAX, INT64_MIN
from entrypoints.api import schemas as api_schemas
from entrypoints.api.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_BASE,
    Problem,
    ValidationProblem,
)
from entrypoints.api.schemas import PRIORITY_MARK, HealthProblem

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
    401: "AUTH=required and no API key, or one that is unknown or revoked "
    "(`WWW-Authenticate: Bearer`).",
    403: "The API key lacks the scope this call needs (tasks:read or tasks:write).",
    404: "No task has this id.",
    409: "The task's status forbids this move.",
    413: "The body is larger than any acceptable request (for a batch: more pairs than "
    "MAX_BATCH_PAIRS).",
    415: "The body is not JSON: the Content-Type header is missing or is not application/json "
    "(Accept names the media type taken).",
    422: "The request is invalid (body, path or query).",
    429: "The tenant's create rate limit or queued-task quota is spent; Retry-After says when "
    "to try again, RateLimit-Policy and RateLimit (IETF httpapi draft) which limit.",
    503: "The task store or the broker is unreachable, or a bounded wait (a lock, a statement, "
    "a pooled connection, the task's turn) ran out; Retry-After says when to try again.",
}

_EXAMPLES = {
    401: _example(
        401,
        "unauthenticated",
        "Authentication required",
        "the API key is missing, unknown or revoked",
    ),
    403: _example(
        403,
        "forbidden",
        "Scope missing",
        "this call needs the scope 'tasks:write', which the key lacks",
    ),
    429: _example(
        429,
        "rate-limited",
        "Rate limit exceeded",
        "too many creates: this tenant's rate limit is spent; retry later",
    ),
    404: _example(404, "task-not-found", "Task not found", "task 42 does not exist"),
    409: _example(
        409,
        "illegal-transition",
        "Move not allowed in the task's status",
        "task 42 is success; its priority can no longer change",
    ),
    413: {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": "the request body exceeds 12865536 bytes",
    },
    415: {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": "the Content-Type header must be application/json (the body is JSON); this "
        "request's is 'text/plain'",
    },
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


BATCH_TOO_LARGE_EXAMPLE = _example(
    413,
    "batch-too-large",
    "Batch too large",
    "a batch holds at most 100000 pairs; this one has 100001",
)


def error_responses(
    *statuses: int,
    conflict: str | None = None,
    described: dict[int, str] | None = None,
    examples: dict[int, dict[str, Any]] | None = None,
) -> dict[int | str, Any]:
    """The `responses=` of a route that may answer with these problem statuses (401, 403 and
    503 always); `described` and `examples` replace the usual description and example."""
    declared: dict[int | str, Any] = {}
    for status in sorted({*statuses, 401, 403, 503}):
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
        if status == 415:
            declared[status]["headers"] = {
                "Accept": {
                    "description": "The media type the body must have: application/json.",
                    "schema": {"type": "string"},
                }
            }
    return declared


def idempotent_create_responses(
    *statuses: int, examples: dict[int, dict[str, Any]] | None = None
) -> dict[int | str, Any]:
    """The problem responses of a create route that takes an Idempotency-Key; `examples`
    replace the usual example of a status."""
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
        429,
        described={
            409: "A request with this Idempotency-Key is still being processed (retry after "
            "Retry-After seconds).",
            422: "The request is invalid (body or header), or its Idempotency-Key was first "
            "used with another request (`idempotency-key-reused`).",
        },
        examples={409: in_flight, **(examples or {})},
    )


def health_unavailable_response() -> dict[int | str, Any]:
    example = _example(
        503,
        "unhealthy",
        "Service Unavailable",
        "broker unavailable: 127.0.0.1:6379: ConnectionError: Error 111 connecting to "
        "127.0.0.1:6379. Connection refused.",
        database="ok",
        broker="unavailable: 127.0.0.1:6379: ConnectionError: Error 111 connecting to "
        "127.0.0.1:6379. Connection refused.",
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


def not_ready_response() -> dict[int | str, Any]:
    example = _example(
        503,
        "not-ready",
        "Service Unavailable",
        "no worker consumes the high queue",
        database="ok",
        broker="ok",
        workers={"high": 0, "medium": 1, "low": 1},
        missing=["high"],
    )
    return {
        503: {
            "description": "The store or the broker did not answer, or a priority's queue has "
            "no worker; `missing` names each.",
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": _REF.format(model=HealthProblem.__name__)},
                    "example": example,
                }
            },
        }
    }


def install_problem_schemas(app: FastAPI, routers: Sequence[tuple[str, APIRouter]]) -> None:
    """Routes refer to the problem schemas by $ref; put them in the generated document, and
    correct what FastAPI's generation gets wrong (see the helpers below)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        _, top = models_json_schema(
            [(m, "serialization") for m in (Problem, ValidationProblem, HealthProblem)],
            ref_template=_REF,
        )
        document.setdefault("components", {}).setdefault("schemas", {}).update(top["$defs"])
        _exact_int64_bounds(document)
        _share_priority_schema(document)
        _restore_examples(routers, document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_EXACT_BOUNDS = {float(INT64_MAX): INT64_MAX, float(INT64_MIN): INT64_MIN}


def _exact_int64_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model holds `minimum`/`maximum` as floats, which turns 2^63 - 1 into
    9.223372036854776e+18 (that is 2^63): put the exact integers back."""
    if isinstance(node, dict):
        for key in ("minimum", "maximum"):
            bound = node.get(key)
            if isinstance(bound, float) and bound in _EXACT_BOUNDS:
                node[key] = _EXACT_BOUNDS[bound]
        for value in node.values():
            _exact_int64_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_int64_bounds(value)


def _share_priority_schema(document: dict[str, Any]) -> None:
    """Every priority field becomes a reference to one `Priority` schema (the list filter's
    enum), so a generated client has one Priority type rather than one per field."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Priority"] = {
        "type": "integer",
        "enum": [1, 2, 3],
        "title": "Priority",
        "description": "1 high, 2 medium, 3 low.",
        # Names for the values, read by generators (openapi-python-client, OpenAPI Generator).
        "x-enum-varnames": [p.name for p in Priority],
    }

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get(PRIORITY_MARK):
                kept = {k: v for k, v in node.items() if k in ("default", "title")}
                return {"$ref": _REF.format(model="Priority"), **kept}
            return {key: visit(value) for key, value in node.items()}
        if isinstance(node, list):
            return [visit(value) for value in node]
        return node

    for name, schema in list(schemas.items()):
        schemas[name] = visit(schema)


def _restore_examples(routers: Sequence[tuple[str, APIRouter]], document: dict[str, Any]) -> None:
    """FastAPI drops every null from the document (it encodes it with `exclude_none`), nulls
    inside examples included, so a task example would lack `result` and fail its own schema:
    put the examples back as written."""
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        model = getattr(api_schemas, name, None)
        extra = getattr(model, "model_config", {}).get("json_schema_extra")
        if isinstance(extra, dict) and "examples" in extra:
            schema["examples"] = extra["examples"]
    routes = [(prefix, route) for prefix, router in routers for route in router.routes]
    for prefix, route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][prefix + route.path_format].get(method.lower())
            if operation is None:
                continue
            for code, response in route.responses.items():
                for media, content in response.get("content", {}).items():
                    if "example" in content:
                        documented = operation["responses"][str(code)]["content"][media]
                        documented["example"] = content["example"]

"""Every error the API returns, as RFC 9457 problem details (`application/problem+json`).

One place maps exceptions to statuses: domain and application errors, request validation,
unknown routes, an unreachable store (503: the port's StoreUnavailable), a bounded wait that ran
out (503: StoreBusy for a lock, a statement or the pool, TaskBusy for a task's turn), no or a bad
API key (401), a missing scope (403), a spent rate limit or quota (429), and anything unforeseen
(a 500 that reveals nothing). Every 503 carries Retry-After. No route raises the broker's
QueueUnavailable: a committed task is the dispatcher's to publish while the broker is down, and
health reports the broker as one of its parts. Nothing here knows a driver: the adapters
translate their errors."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from application.errors import ConcurrentModification, TaskNotFound
from application.ports import StoreBusy, StoreUnavailable
from domain.access import Forbidden, InvalidTenant, QuotaExceeded, Unauthenticated
from domain.errors import (
    BatchTooLarge,
    DomainError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidOperands,
)
from entrypoints.api.auth import RateLimited
from entrypoints.api.task_turns import TaskBusy

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:taskman:problem:"


class Problem(BaseModel):
    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="A short summary of that kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the field.")
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[FieldError] = Field(description="Each invalid part of the request.")


# Domain and application errors, most specific first: (status, slug, title).
_DOMAIN_PROBLEMS: list[tuple[type[Exception], int, str, str]] = [
    (Unauthenticated, 401, "unauthenticated", "Authentication required"),
    (Forbidden, 403, "forbidden", "Scope missing"),
    (QuotaExceeded, 429, "quota-exceeded", "Quota exceeded"),
    (InvalidTenant, 422, "invalid-tenant", "Invalid tenant"),
    (TaskNotFound, 404, "task-not-found", "Task not found"),
    (IllegalTransition, 409, "illegal-transition", "Move not allowed in the task's status"),
    (ConcurrentModification, 409, "concurrent-modification", "Task changed concurrently"),
    (InvalidOperands, 422, "invalid-operands", "Invalid operands"),
    (BatchTooLarge, 413, "batch-too-large", "Batch too large"),
    (
        IdempotencyKeyInFlight,
        409,
        "idempotency-key-in-flight",
        "Request with this idempotency key in progress",
    ),
    (IdempotencyKeyReused, 422, "idempotency-key-reused", "Idempotency key reused"),
]

# Seconds a client should wait before retrying after a bounded wait ran out: the lock or turn
# that was busy is usually released within milliseconds, so soon is reasonable.
BUSY_RETRY_AFTER_SECONDS = 1


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem-details response; without a slug, the generic problem of the HTTP status."""
    body = {
        "type": PROBLEM_TYPE_BASE + slug if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def _domain_error(_: Request, error: Exception) -> JSONResponse:
    for kind, status, slug, title in _DOMAIN_PROBLEMS:
        if isinstance(error, kind):
            return problem(status, str(error), slug=slug, title=title, **_extras(error))
    return problem(422, str(error), slug="rule-violated", title="Business rule violated")


# A tenant over its quota waits for its queued tasks to run: a few seconds, not milliseconds.
QUOTA_RETRY_AFTER_SECONDS = 5


def _extras(error: Exception) -> dict[str, Any]:
    if isinstance(error, Unauthenticated):
        return {"headers": {"WWW-Authenticate": 'Bearer realm="taskman"'}}
    if isinstance(error, Forbidden):
        challenge = f'Bearer realm="taskman", error="insufficient_scope", scope="{error.scope}"'
        return {"headers": {"WWW-Authenticate": challenge}}
    if isinstance(error, QuotaExceeded):
        policy = "queued-tasks" if error.what == "tasks" else "queued-batch-pairs"
        after = QUOTA_RETRY_AFTER_SECONDS
        headers = {
            "Retry-After": str(after),
            "RateLimit-Policy": f'"{policy}";q={error.limit}',
            "RateLimit": f'"{policy}";r={max(0, error.limit - error.held)};t={after}',
        }
        return {"headers": headers}
    if isinstance(error, IdempotencyKeyInFlight):
        # The first request is about to answer: a client may retry within the second.
        return {"headers": {"Retry-After": "1"}}
    if isinstance(error, IdempotencyKeyReused):
        # Like every 422, it names the part of the request at fault.
        at_fault = {"loc": ["header", "Idempotency-Key"], "msg": str(error), "type": "reused"}
        return {"errors": [at_fault]}
    return {}


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc, msg and type: `input` may echo a huge body and `ctx` may hold exceptions.
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in error.errors()
    ]


async def _validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    errors = _field_errors(error)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return problem(
        422,
        f"{where}: {first['msg']}" if where else str(first["msg"]),
        slug="validation-error",
        title="Invalid request",
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400:
        # FastAPI answers 400 when the body cannot be decoded at all (bad UTF-8, a number of
        # thousands of digits, nesting too deep): to clients that is one more invalid body.
        return problem(
            422,
            "the request body is not valid JSON",
            slug="validation-error",
            title="Invalid request",
            errors=[{"loc": ["body"], "msg": "malformed JSON", "type": "json_invalid"}],
        )
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else phrase
    if error.status_code in (404, 405) and detail == phrase:  # raised by routing itself
        detail = f"{request.method} {request.url.path}: {phrase.lower()}"
    return problem(error.status_code, detail, headers=dict(error.headers or {}))


async def _store_error(_: Request, error: Exception) -> JSONResponse:
    # Not the error's own message, which may quote the driver.
    if isinstance(error, StoreBusy):
        return _busy(
            "store-busy",
            "Task store busy",
            "the task store did not answer in time (a lock, a statement or a connection wait "
            "ran out); try again shortly",
        )
    return _unavailable("the task store is unreachable; try again shortly")


async def _rate_limited(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RateLimited)
    return problem(
        429, str(error), slug="rate-limited", title="Rate limit exceeded", headers=error.headers
    )


async def _task_busy(_: Request, error: Exception) -> JSONResponse:
    return _busy("task-busy", "Task busy", str(error))


def _busy(slug: str, title: str, detail: str) -> JSONResponse:
    headers = {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)}
    return problem(503, detail, slug=slug, title=title, headers=headers)


async def _unexpected_error(_: Request, __: Exception) -> JSONResponse:
    # Starlette re-raises after this response is sent, so the server logs the traceback.
    return _internal_error()


def _unavailable(detail: str) -> JSONResponse:
    return problem(503, detail, slug="unavailable", headers={"Retry-After": "5"})


def _internal_error() -> JSONResponse:
    return problem(500, "an unexpected error occurred; it has been logged", slug="internal")


def install_problem_handlers(app: FastAPI) -> None:
    for rule_error in (DomainError, TaskNotFound, ConcurrentModification):
        app.add_exception_handler(rule_error, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_error)
    app.add_exception_handler(TaskBusy, _task_busy)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(Exception, _unexpected_error)

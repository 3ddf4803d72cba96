"""Who a request acts as, what it may do, and how fast it may create (docs/operations.md).

With AUTH=off every request acts as the built-in tenant, which may do everything. With
AUTH=required a request to /api/v1/tasks needs `Authorization: Bearer <key>`: none, or one that
names no live key, is 401 with `WWW-Authenticate: Bearer`; a key without the route's scope is
403. The scheme is declared in the OpenAPI document (HTTPBearer), so /docs offers "Authorize".

Creates also take a token from their tenant's bucket (RATE_LIMIT_*): an empty bucket is 429 with
Retry-After and the RateLimit-Policy and RateLimit fields of the IETF httpapi ratelimit-headers
draft (draft-ietf-httpapi-ratelimit-headers)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from application.ports import RateDecision, RateLimiter
from domain.access import BUILT_IN, Principal, Scope, Unauthenticated

CREATES_POLICY = "creates"

_bearer = HTTPBearer(
    auto_error=False,  # a missing or malformed header is our 401 problem, not FastAPI's 403
    description="An API key made with `python -m entrypoints.keys create`; needed when "
    "AUTH=required, ignored when AUTH=off.",
)


class RateLimited(Exception):
    """The tenant's bucket is empty: 429 with the headers of `decision`."""

    def __init__(self, limiter: RateLimiter, decision: RateDecision) -> None:
        super().__init__("too many creates: this tenant's rate limit is spent; retry later")
        self.headers = rate_limit_headers(limiter, decision)


def rate_limit_headers(limiter: RateLimiter, decision: RateDecision) -> dict[str, str]:
    # The bucket as the draft's quota policy: `burst` requests per the time it takes to refill.
    window = max(1, math.ceil(limiter.burst / limiter.rate))
    return {
        "Retry-After": str(max(1, math.ceil(decision.retry_after))),
        "RateLimit-Policy": f'"{CREATES_POLICY}";q={limiter.burst};w={window}',
        "RateLimit": f'"{CREATES_POLICY}";r={decision.remaining};'
        f"t={math.ceil(decision.full_after)}",
    }


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    container = request.app.state.container
    if not container.settings().auth_required:
        return BUILT_IN
    if credentials is None:
        raise Unauthenticated("this call needs an API key: Authorization: Bearer <key>")
    authenticate = container.authenticate()
    principal: Principal = await run_in_threadpool(authenticate.execute, credentials.credentials)
    return principal


def _scoped(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    async def scoped(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        principal.require(scope)
        return principal

    return scoped


async def _creator(
    request: Request, principal: Annotated[Principal, Depends(_scoped(Scope.WRITE))]
) -> Principal:
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        decision = await run_in_threadpool(limiter.take, principal.tenant)
        if not decision.allowed:
            raise RateLimited(limiter, decision)
    return principal


Reader = Annotated[Principal, Depends(_scoped(Scope.READ))]
Writer = Annotated[Principal, Depends(_scoped(Scope.WRITE))]
# A writer whose create fits its tenant's rate limit.
Creator = Annotated[Principal, Depends(_creator)]

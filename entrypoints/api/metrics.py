"""GET /metrics (Prometheus text format) and the per-request metrics and access log line."""

from __future__ import annotations

import time

import structlog
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.metrics import HttpMetrics, StateCollector, exposition_registry
from domain.priority import Priority
from domain.task import TaskStatus
from entrypoints.container import Container
from entrypoints.observability import multiprocess

log = structlog.get_logger("taskman.api")

# The label of a request no route matched: its raw path would make the label set unbounded.
UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    """Counts each HTTP request and times it, labelled by its route's template, and logs one
    line per request (route, method, status, duration) when `access_log` is on. Pure ASGI: it
    adds no task or buffering to the request's path."""

    def __init__(self, app: ASGIApp, http: HttpMetrics | None, access_log: bool) -> None:
        self._app = app
        self._http = http
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, remember_status)
        finally:
            seconds = time.perf_counter() - started
            template = _template(scope)
            if self._http is not None:
                self._http.observe(template, scope["method"], status, seconds)
            if self._access_log:
                log.info(
                    "request",
                    route=template,
                    method=scope["method"],
                    status=status,
                    duration_ms=round(seconds * 1000, 3),
                )


def _template(scope: Scope) -> str:
    """The matched route's template, its router's prefix included. This FastAPI serves an
    included router's routes from the router (scope["route"] is the route as declared, without
    the prefix) and records the effective route, prefix included, beside it."""
    effective = scope.get("fastapi", {}).get("effective_route_context")
    for candidate in (effective, scope.get("route")):
        template = getattr(candidate, "path_format", None)
        if isinstance(template, str):
            return template
    return UNMATCHED


def install_metrics(app: FastAPI, container: Container) -> None:
    """The request middleware always (it writes the access log); /metrics and the request
    metrics only with METRICS_ENABLED on."""
    settings = container.settings()
    if not settings.metrics_enabled:
        app.add_middleware(RequestMetricsMiddleware, http=None, access_log=settings.access_log)
        return
    registry = container.metrics_registry()
    container.metrics()  # registers the use cases' metrics before the first scrape
    http = HttpMetrics(registry)
    app.add_middleware(RequestMetricsMiddleware, http=http, access_log=settings.access_log)
    queue = container.queue()

    def by_status() -> dict[tuple[TaskStatus, Priority], int]:
        # The exact counts (a small table of deltas), never a count over the tasks table.
        with container.read_uow() as uow:
            counts = uow.tasks.counts()
        summed: dict[tuple[TaskStatus, Priority], int] = {}
        for (status, priority, _), n in counts.items():
            summed[status, priority] = summed.get((status, priority), 0) + n
        return summed

    served = exposition_registry(
        registry, multiprocess(), StateCollector(by_status, queue.pending, queue.consumers)
    )

    # Sync: the scrape reads the store and the broker, so it runs in the threadpool.
    def metrics() -> Response:
        return Response(generate_latest(served), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)

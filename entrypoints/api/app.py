"""The app factory: `uvicorn --factory entrypoints.api.app:create_app`.

Nothing happens at import time; each call builds an app bound to one Container (tests pass a
container whose adapters are overridden with fakes). dependency-injector wires per module, so
the app built last is the one whose container the routes resolve: one app per process (tests
build one per test, and unwire it after)."""

from importlib.metadata import version

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from adapters.rate_limit import InProcessTokenBucket, RedisTokenBucket
from application.ports import RateLimiter
from entrypoints.api import API_PREFIX, console, health, history, tasks
from entrypoints.api.body_limit import BodyLimitMiddleware
from entrypoints.api.create_groups import CreateGroups
from entrypoints.api.docs import install_problem_schemas
from entrypoints.api.event_feed import EventFeed
from entrypoints.api.idempotency import InFlightKeys
from entrypoints.api.metrics import install_metrics
from entrypoints.api.problems import install_problem_handlers
from entrypoints.api.task_turns import TaskTurns
from entrypoints.container import Container
from entrypoints.observability import configure_logging
from entrypoints.settings import Settings

# A pretty-printed pair with two 20-digit operands stays under this many bytes.
_BYTES_PER_PAIR = 128
_BODY_OVERHEAD = 64 * 1024

DESCRIPTION = """Addition tasks at three priorities (1 high, 2 medium, 3 low), run by workers.

Every error is an RFC 9457 problem (`application/problem+json`)."""


def create_app(container: Container | None = None) -> FastAPI:
    container = container or Container()
    settings = container.settings()
    configure_logging(settings)  # each uvicorn worker is a process of its own
    # The largest acceptable batch fits; anything bigger is refused (413) before it is parsed.
    max_body = _BODY_OVERHEAD + settings.max_batch_pairs * _BYTES_PER_PAIR

    # Swagger UI and ReDoc served from the assets fastapi-offline ships, never from a CDN: /docs
    # works on a machine with no internet.
    app = FastAPIOffline(
        title="taskman",
        version=version("taskman"),  # the package's, from pyproject.toml
        description=DESCRIPTION,
        generate_unique_id_function=operation_id,
    )
    app.add_api_route("/", _to_docs, include_in_schema=False)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body)
    # Added last, so outermost: it times and counts every answer, a 413 from the limit too.
    install_metrics(app, container)
    container.wire(modules=[tasks, health, history, console])
    # API-only machinery, one per app: built here, not in the container the other processes
    # share. The groups resolve CreateTask at each group, so an override in a test still counts.
    app.state.container = container  # read by the auth dependencies (entrypoints.api.auth)
    app.state.create_groups = CreateGroups(container.create_task)
    # A move waits for its task's turn no longer than a statement waits for the task's row.
    app.state.task_turns = TaskTurns(wait_seconds=settings.db_lock_timeout_seconds)
    app.state.in_flight_keys = InFlightKeys()
    # Shared by the streams of every task's events: one read of the log per poll for them all.
    app.state.event_feed = EventFeed(container.follow_events, settings.events_poll_seconds)
    app.state.rate_limiter = rate_limiter(settings)
    app.include_router(tasks.router, prefix=API_PREFIX)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(history.router, prefix=API_PREFIX)
    app.include_router(history.events_router, prefix=API_PREFIX)
    app.include_router(console.router, prefix=API_PREFIX)
    app.include_router(console.pages)
    install_problem_handlers(app)
    routers = [tasks.router, health.router, history.router, history.events_router, console.router]
    install_problem_schemas(app, [(API_PREFIX, router) for router in routers])
    return app


def rate_limiter(settings: Settings) -> RateLimiter | None:
    """The creates' token buckets: in Redis when the broker is Redis (shared by every API
    process), else in this process (see adapters.rate_limit); None when the limit is off."""
    rate = settings.creates_per_second
    if rate is None:
        return None
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        return RedisTokenBucket.from_url(url, rate, settings.creates_burst)
    return InProcessTokenBucket(rate, settings.creates_burst)


def operation_id(route: APIRoute) -> str:
    """Each route's operationId is its function's name in camelCase (`change_priority` ->
    `changePriority`): generated clients name their methods after the act."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


async def _to_docs() -> RedirectResponse:
    return RedirectResponse("/docs")

"""The app factory: `uvicorn --factory entrypoints.api.app:create_app`.

Nothing happens at import time; each call builds an app bound to one Container (tests pass a
container whose adapters are overridden with fakes). dependency-injector wires per module, so
the app built last is the one whose container the routes resolve: one app per process (tests
build one per test, and unwire it after)."""

from fastapi import FastAPI

from entrypoints.api import API_PREFIX, health, tasks
from entrypoints.api.body_limit import BodyLimitMiddleware
from entrypoints.api.docs import install_problem_schemas
from entrypoints.api.idempotency import InFlightKeys
from entrypoints.api.problems import install_problem_handlers
from entrypoints.container import Container

# A pretty-printed pair with two 20-digit operands stays under this many bytes.
_BYTES_PER_PAIR = 128
_BODY_OVERHEAD = 64 * 1024

DESCRIPTION = """Addition tasks at three priorities (1 high, 2 medium, 3 low), run by workers.

Every error is an RFC 9457 problem (`application/problem+json`)."""


def create_app(container: Container | None = None) -> FastAPI:
    container = container or Container()
    settings = container.settings()
    # The largest acceptable batch fits; anything bigger is refused (413) before it is parsed.
    max_body = _BODY_OVERHEAD + settings.max_batch_pairs * _BYTES_PER_PAIR

    app = FastAPI(
        title="taskman",
        version="1.0.0",
        description=DESCRIPTION,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body)
    container.wire(modules=[tasks, health])
    app.state.container = container
    app.state.in_flight_keys = InFlightKeys()
    app.include_router(tasks.router, prefix=API_PREFIX)
    app.include_router(health.router, prefix=API_PREFIX)
    install_problem_handlers(app)
    install_problem_schemas(app)
    return app

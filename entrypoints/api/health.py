"""GET /health: asks the task store and the broker for real.

200 when both answer, with how many workers consume each priority's queue; otherwise a 503
problem that names the failing part (load balancers and compose health checks read the status)."""

from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from application.use_cases import CheckHealth
from entrypoints.api.docs import health_unavailable_response
from entrypoints.api.injection import Provide
from entrypoints.api.problems import problem
from entrypoints.api.schemas import HealthOut, workers_by_queue
from entrypoints.container import Container

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    summary="Whether the task store and the broker answer",
    responses=health_unavailable_response(),
)
@inject
async def health(
    check: Annotated[CheckHealth, Depends(Provide[Container.check_health])],
) -> HealthOut | JSONResponse:
    report = await run_in_threadpool(check.execute)  # both probes block
    broker_ok = report.broker == "ok"
    workers = workers_by_queue(report.consumers) if broker_ok else None
    if report.healthy:
        return HealthOut(
            status="ok", database=report.database, broker=report.broker, workers=workers
        )
    # Each state says why, e.g. "unavailable: 127.0.0.1:6379: ConnectionError: ... refused".
    failing = [
        f"{part} {state}"
        for part, state in (("database", report.database), ("broker", report.broker))
        if state != "ok"
    ]
    return problem(
        503,
        "; ".join(failing),
        slug="unhealthy",
        database=report.database,
        broker=report.broker,
        workers=workers,
    )

"""Health: is the process up (`/health/live`), may it take traffic (`/health/ready`), and what
state is each part in (`/health`).

- live: 200 as long as the process answers; asks nothing else, so a restart is never triggered
  by an outage a restart cannot fix.
- ready: 200 when the store and the broker answer and every priority's queue has a worker;
  otherwise a 503 problem naming what is missing.
- health: 200 when the store and the broker answer, "degraded" if a priority's queue has no
  worker (its tasks are accepted and kept, but wait); a 503 problem naming the failing part."""

from typing import Annotated, Literal

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from application.use_cases import CheckHealth, HealthReport
from entrypoints.api.docs import health_unavailable_response, not_ready_response
from entrypoints.api.injection import Provide
from entrypoints.api.problems import problem
from entrypoints.api.schemas import HealthOut, LiveOut, ReadyOut, workers_by_queue
from entrypoints.container import Container

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    summary="Whether the task store and the broker answer, and each queue has a worker",
    responses=health_unavailable_response(),
)
@inject
async def health(
    check: Annotated[CheckHealth, Depends(Provide[Container.check_health])],
) -> HealthOut | JSONResponse:
    report = await run_in_threadpool(check.execute)  # both probes block
    workers = _workers(report)
    if report.healthy:
        status: Literal["ok", "degraded"] = "degraded" if report.without_consumer else "ok"
        return HealthOut(
            status=status, database=report.database, broker=report.broker, workers=workers
        )
    return problem(
        503,
        "; ".join(_failing(report)),
        slug="unhealthy",
        database=report.database,
        broker=report.broker,
        workers=workers,
    )


@router.get("/health/live", response_model=LiveOut, summary="Whether the API process answers")
async def health_live() -> LiveOut:
    return LiveOut(status="ok")


@router.get(
    "/health/ready",
    response_model=ReadyOut,
    summary="Whether the store and the broker answer and every priority's queue has a worker",
    responses=not_ready_response(),
)
@inject
async def health_ready(
    check: Annotated[CheckHealth, Depends(Provide[Container.check_health])],
) -> ReadyOut | JSONResponse:
    report = await run_in_threadpool(check.execute)
    workers = _workers(report)
    if report.ready:
        return ReadyOut(
            status="ready", database=report.database, broker=report.broker, workers=workers
        )
    idle = [priority.queue_name for priority in report.without_consumer]
    missing = [
        part
        for part, state in (("database", report.database), ("broker", report.broker))
        if state != "ok"
    ] + idle
    detail = _failing(report) + [f"no worker consumes the {queue} queue" for queue in idle]
    return problem(
        503,
        "; ".join(detail),
        slug="not-ready",
        database=report.database,
        broker=report.broker,
        workers=workers,
        missing=missing,
    )


def _workers(report: HealthReport) -> dict[str, int] | None:
    return workers_by_queue(report.consumers) if report.broker == "ok" else None


def _failing(report: HealthReport) -> list[str]:
    # Each state says why, e.g. "unavailable: 127.0.0.1:6379: ConnectionError: ... refused".
    return [
        f"{part} {state}"
        for part, state in (("database", report.database), ("broker", report.broker))
        if state != "ok"
    ]

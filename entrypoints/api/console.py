"""The operator console: the page at /dashboard, its assets, and the admin calls it makes.

The page itself holds no data: a static HTML shell and one plain script, served from this
package (no CDN), which asks for an admin API key when AUTH=required and sends it as a bearer
token with each call (a browser cannot put a bearer token on a page load). Everything it shows
comes from the API: `GET /api/v1/console/overview` and `POST /api/v1/tasks/bulk` (admin scope),
the task list, attempts, explain and moves (their own scopes), and `GET /api/v1/events`, read
with fetch (EventSource cannot send the key) to refresh the page as tasks move."""

from importlib.resources import files
from typing import Annotated

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from application.ports import TaskFilter
from application.use_cases import BulkMove, BulkMoveRequest, ConsoleOverview
from domain.access import Principal, Scope
from domain.priority import Priority
from entrypoints.api.auth import Reader
from entrypoints.api.content_type import require_json_body
from entrypoints.api.docs import error_responses
from entrypoints.api.history_schemas import BulkBody, BulkOut, OverviewOut
from entrypoints.api.injection import Provide
from entrypoints.api.tasks import TASKS_PATH
from entrypoints.container import Container

ASSETS = files("entrypoints.api") / "console_assets"
_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}

pages = APIRouter(include_in_schema=False)
router = APIRouter(tags=["console"])


async def _admin(principal: Reader) -> Principal:
    principal.require(Scope.ADMIN)
    return principal


Admin = Annotated[Principal, Depends(_admin)]


@pages.get("/dashboard")
async def dashboard() -> Response:
    return Response((ASSETS / "index.html").read_bytes(), media_type="text/html")


@pages.get("/dashboard/assets/{name}")
async def asset(name: str) -> Response:
    if name not in _TYPES:
        return Response(status_code=404)
    return Response((ASSETS / name).read_bytes(), media_type=_TYPES[name])


@router.get(
    "/console/overview",
    response_model=OverviewOut,
    summary="The console's per-priority panels (admin)",
    responses=error_responses(),
)
@inject
async def console_overview(
    principal: Admin,
    overview: Annotated[ConsoleOverview, Depends(Provide[Container.console_overview])],
) -> OverviewOut:
    return OverviewOut.of(await run_in_threadpool(overview.execute, principal))


@router.post(
    f"{TASKS_PATH}/bulk",
    response_model=BulkOut,
    summary="Retry, cancel or re-prioritise every task matching a filter (admin)",
    description="Each task is moved by the same use case as its single move, so every rule "
    "holds; tasks whose status refuses the move are counted as skipped. `dry_run` (the "
    "default) only counts the matching tasks. At most 10,000 tasks per call (`more`).",
    responses=error_responses(413, 415, 422),
    dependencies=[Depends(require_json_body)],
)
@inject
async def bulk_move(
    principal: Admin,
    body: BulkBody,
    bulk: Annotated[BulkMove, Depends(Provide[Container.bulk_move])],
) -> BulkOut:
    request = BulkMoveRequest(
        action=body.action,
        principal=principal,
        filter=TaskFilter(
            status=body.filter.status,
            type=body.filter.type,
            priority=None if body.filter.priority is None else Priority(body.filter.priority),
            created_after=body.filter.created_after,
            created_before=body.filter.created_before,
        ),
        priority=None if body.priority is None else Priority(body.priority),
        dry_run=body.dry_run,
    )
    return BulkOut.of(await run_in_threadpool(bulk.execute, request))

"""The task routes: thin translations between HTTP and the use cases.

The use cases block on the database, so they always run in the threadpool. Routes with small
bodies are `async def` and hand only the use case to the threadpool (one hop per request instead
of FastAPI's two for a `def` route, whose response validation hops again); routes whose bodies
can be huge (a batch, a page of batches) are plain `def`, so that building and validating their
response stays off the event loop too. Errors travel as exceptions to entrypoints.api.problems.
The moves take their task's turn first (entrypoints.api.task_turns), so requests crowding on one
locked task wait off the threadpool."""

from typing import Annotated, Any

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from application.errors import TaskNotFound
from application.ports import TaskFilter
from application.use_cases import (
    CancelTask,
    ChangePriority,
    ChangePriorityRequest,
    CreateBatch,
    CreateBatchRequest,
    CreateTaskRequest,
    GetTask,
    IdempotentResponse,
    ListTasks,
    ListTasksRequest,
    RetryTask,
)
from domain.priority import Priority
from domain.task import INT64_MAX, TaskStatus, TaskType
from entrypoints.api.auth import Creator, Reader, Writer
from entrypoints.api.content_type import require_json_body
from entrypoints.api.create_groups import CreateGroups
from entrypoints.api.docs import (
    BATCH_TOO_LARGE_EXAMPLE,
    error_responses,
    idempotent_create_responses,
)
from entrypoints.api.idempotency import IdempotencyKeyHeader, InFlight, answer, keyed, location
from entrypoints.api.injection import Provide
from entrypoints.api.schemas import (
    ChangePriorityBody,
    CreateBatchBody,
    CreateTaskBody,
    Instant,
    TaskOut,
    TaskPageOut,
)
from entrypoints.api.task_turns import TaskTurns
from entrypoints.container import Container

TASKS_PATH = "/tasks"
MAX_PAGE_SIZE = 1000
# Far beyond any real table, far below what would overflow a database's OFFSET.
MAX_OFFSET = 10**9

router = APIRouter(prefix=TASKS_PATH, tags=["tasks"])

# An id is written one way only: decimal digits, no sign, no leading zero, nothing around them.
# Anything else is a 422 (validation-error on path.task_id) on every route; a well-formed id
# that names no task is a 404, 0 and ids beyond the int64 range included.
TASK_ID_PATTERN = r"^(0|[1-9][0-9]*)$"
_INT64_DIGITS = len(str(INT64_MAX))
_SHOWN_DIGITS = 30


async def _task_id(
    task_id: Annotated[
        str,
        Path(
            pattern=TASK_ID_PATTERN,
            description="The task's id: decimal digits, without sign or leading zero.",
            examples=["42"],
        ),
    ],
) -> int:
    # async: a plain function would cost a hop to the threadpool per request.
    if len(task_id) > _INT64_DIGITS or int(task_id) > INT64_MAX:
        # No store could even look it up (a BIGINT parameter would overflow): it names no task.
        shown = task_id if len(task_id) <= _SHOWN_DIGITS else f"{task_id[:_SHOWN_DIGITS]}..."
        raise TaskNotFound(shown)
    return int(task_id)


TaskId = Annotated[int, Depends(_task_id)]


@router.post(
    "",
    status_code=201,
    response_model=TaskOut,
    summary="Submit one addition a + b",
    responses=idempotent_create_responses(413, 415),
    dependencies=[Depends(require_json_body)],
)
async def create_task(
    principal: Creator,
    body: CreateTaskBody,
    response: Response,
    http: Request,
    in_flight: InFlight,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    groups = _create_groups(http)
    key = keyed(idempotency_key, "POST /tasks", body, principal.tenant)
    request = CreateTaskRequest(
        a=body.a, b=body.b, priority=Priority(body.priority), idempotency=key, principal=principal
    )
    if key is None:
        task = await groups.create(request)
        assert not isinstance(task, IdempotentResponse)
        response.headers["Location"] = location(task.id)
        return TaskOut.of(task)
    with in_flight.hold(key):
        outcome = await groups.create(request)
    assert isinstance(outcome, IdempotentResponse)
    return answer(outcome)


@router.post(
    "/batch",
    status_code=201,
    response_model=TaskOut,
    summary="Submit a batch of additions, run as one task",
    responses=idempotent_create_responses(413, 415, examples={413: BATCH_TOO_LARGE_EXAMPLE}),
    dependencies=[Depends(require_json_body)],
)
@inject
def create_batch(
    principal: Creator,
    body: CreateBatchBody,
    response: Response,
    create: Annotated[CreateBatch, Depends(Provide[Container.create_batch])],
    in_flight: InFlight,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    key = keyed(idempotency_key, "POST /tasks/batch", body, principal.tenant)
    pairs = [(pair["a"], pair["b"]) for pair in body.pairs]
    request = CreateBatchRequest(
        pairs=pairs, priority=Priority(body.priority), idempotency=key, principal=principal
    )
    if key is None:
        task = create.execute(request)
        assert not isinstance(task, IdempotentResponse)
        response.headers["Location"] = location(task.id)
        return TaskOut.of(task)
    with in_flight.hold(key):
        outcome = create.execute(request)
    assert isinstance(outcome, IdempotentResponse)
    return answer(outcome)


@router.get(
    "",
    response_model=TaskPageOut,
    summary="List tasks, newest first",
    responses=error_responses(422),
)
@inject
def list_tasks(
    principal: Reader,
    list_: Annotated[ListTasks, Depends(Provide[Container.list_tasks])],
    request: Request,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status.")] = None,
    task_type: Annotated[
        TaskType | None, Query(alias="type", description="Only single or only batch tasks.")
    ] = None,
    priority: Annotated[Priority | None, Query(description="Only this priority.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description="Matches to skip (kept for compatibility: its cost grows with its "
            "size; prefer `before_id`).",
        ),
    ] = 0,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=INT64_MAX,
            description="Keyset cursor: only tasks whose id is below it (the previous page's "
            "`next`). A deep page costs what the first one does.",
        ),
    ] = None,
    created_after: Annotated[
        Instant | None,
        Query(
            description="Only tasks created at or after this instant (RFC 3339 date-time with "
            "its offset, e.g. `2026-12-01T10:00:00Z`)."
        ),
    ] = None,
    created_before: Annotated[
        Instant | None,
        Query(description="Only tasks created before this instant (RFC 3339, as above)."),
    ] = None,
) -> Response:
    task_filter = TaskFilter(
        status=status,
        type=task_type,
        priority=priority,
        created_after=created_after,
        created_before=created_before,
    )
    page = list_.execute(
        ListTasksRequest(
            filter=task_filter,
            limit=limit,
            offset=offset,
            before_id=before_id,
            principal=principal,
        )
    )
    headers = {}
    if page.next_before_id is not None:
        # The same filters and limit; the cursor replaces any offset (it already skips them).
        following = request.url.remove_query_params("offset").include_query_params(
            before_id=page.next_before_id
        )
        headers["Link"] = f'<{following}>; rel="next"'
    out = TaskPageOut(
        items=[TaskOut.of(task) for task in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next=page.next_before_id,
    )
    # Encoded by pydantic-core in one step. Handed the model, FastAPI would validate it once
    # more and encode it through json.dumps: about 1.4 ms of a 50-task page against 0.5 ms
    # (docs/benchmark.md). The response_model above still gives the documented shape.
    return Response(out.model_dump_json(), media_type="application/json", headers=headers)


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    summary="One task",
    responses=error_responses(404, 422),
)
@inject
async def get_task(
    principal: Reader,
    task_id: TaskId,
    get: Annotated[GetTask, Depends(Provide[Container.get_task])],
) -> TaskOut:
    return TaskOut.of(await run_in_threadpool(get.execute, task_id, principal))


@router.put(
    "/{task_id}",
    response_model=TaskOut,
    summary="Change a task's priority",
    description="A queued task is re-scheduled on the new priority's queue, its delay counted "
    "from now; a running or failed task keeps the new priority for a later retry; a task that "
    "succeeded or was cancelled cannot change (409).",
    responses=error_responses(
        404, 409, 413, 415, 422, conflict="task 42 is success; its priority can no longer change"
    ),
    dependencies=[Depends(require_json_body)],
)
@inject
async def change_priority(
    principal: Writer,
    task_id: TaskId,
    body: ChangePriorityBody,
    change: Annotated[ChangePriority, Depends(Provide[Container.change_priority])],
    http: Request,
) -> TaskOut:
    request = ChangePriorityRequest(
        task_id=task_id, priority=Priority(body.priority), principal=principal
    )
    async with _turns(http).of(task_id):
        return TaskOut.of(await run_in_threadpool(change.execute, request))


@router.post(
    "/{task_id}/retry",
    response_model=TaskOut,
    summary="Retry a failed task with a fresh attempt budget",
    responses=error_responses(
        404, 409, 422, conflict="task 42 is success; only failed tasks are retried"
    ),
)
@inject
async def retry_task(
    principal: Writer,
    task_id: TaskId,
    retry: Annotated[RetryTask, Depends(Provide[Container.retry_task])],
    http: Request,
) -> TaskOut:
    async with _turns(http).of(task_id):
        return TaskOut.of(await run_in_threadpool(retry.execute, task_id, principal))


@router.post(
    "/{task_id}/cancel",
    response_model=TaskOut,
    summary="Cancel a queued task",
    responses=error_responses(
        404, 409, 422, conflict="task 42 is running; only queued tasks are cancelled"
    ),
)
@inject
async def cancel_task(
    principal: Writer,
    task_id: TaskId,
    cancel: Annotated[CancelTask, Depends(Provide[Container.cancel_task])],
    http: Request,
) -> TaskOut:
    async with _turns(http).of(task_id):
        return TaskOut.of(await run_in_threadpool(cancel.execute, task_id, principal))


def _create_groups(http: Request) -> CreateGroups:
    # Built by the app factory: API-only machinery, one per app (see create_groups).
    groups: CreateGroups = http.app.state.create_groups
    return groups


def _turns(http: Request) -> TaskTurns:
    # Built by the app factory: API-only machinery, one per app (see task_turns).
    turns: TaskTurns = http.app.state.task_turns
    return turns

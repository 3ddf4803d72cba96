"""A task's attempts, why it is not finished, and the live events of tasks (Server-Sent Events).

The event streams read the store's event log (revision 0007) every EVENTS_POLL_SECONDS, send
each event with its id as the SSE `id:`, resume after `Last-Event-ID`, and send a comment every
EVENTS_HEARTBEAT_SECONDS while nothing happens; a task's stream ends with the event that
finishes it (success, failed, cancelled). The streams of every task's events share one reader
of the log per process (entrypoints/api/event_feed.py); a task's stream reads on its own.
sse-starlette writes the wire format and ends a stream when its client goes away or the server
shuts down."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from dependency_injector.wiring import inject
from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from application.use_cases import EventCursor, ExplainTask, FollowEvents, GetAttempts
from domain.priority import Priority
from domain.task import INT64_MAX, TaskStatus
from entrypoints.api.auth import Reader
from entrypoints.api.docs import error_responses
from entrypoints.api.event_feed import encoded
from entrypoints.api.history_schemas import AttemptOut, AttemptsOut, ExplanationOut
from entrypoints.api.injection import Provide
from entrypoints.api.tasks import TASKS_PATH, TaskId
from entrypoints.container import Container

router = APIRouter(tags=["tasks"])
events_router = APIRouter(tags=["events"])

EVENT_STREAM = "text/event-stream"
_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events: each `event: task`, its `id:` the "
        "event id, its `data:` a JSON object; comment lines are heartbeats.",
        "content": {
            EVENT_STREAM: {
                "schema": {"type": "string"},
                "example": 'id: 7\nevent: task\ndata: {"event_id": 7, "task_id": 42, '
                '"status": "success", "priority": 1, "at": "2026-12-01T10:00:00.006000+00:00"}'
                "\n\n",
            }
        },
    }
}
LastEventId = Annotated[
    int | None,
    Header(
        ge=0,
        le=INT64_MAX,
        description="Resume after this event id (sent by EventSource when it reconnects).",
    ),
]


@router.get(
    f"{TASKS_PATH}/{{task_id}}/attempts",
    response_model=AttemptsOut,
    summary="A task's attempts: start, end, outcome, error, start lateness",
    responses=error_responses(404, 422),
)
@inject
async def get_attempts(
    principal: Reader,
    task_id: TaskId,
    attempts: Annotated[GetAttempts, Depends(Provide[Container.get_attempts])],
) -> AttemptsOut:
    found = await run_in_threadpool(attempts.execute, task_id, principal)
    return AttemptsOut(task_id=task_id, items=[AttemptOut.of(attempt) for attempt in found])


@router.get(
    f"{TASKS_PATH}/{{task_id}}/explain",
    response_model=ExplanationOut,
    summary="Why a task is not finished yet, with numbers",
    responses=error_responses(404, 422),
)
@inject
async def explain_task(
    principal: Reader,
    task_id: TaskId,
    explain: Annotated[ExplainTask, Depends(Provide[Container.explain_task])],
) -> ExplanationOut:
    return ExplanationOut.of(await run_in_threadpool(explain.execute, task_id, principal))


@router.get(
    f"{TASKS_PATH}/{{task_id}}/events",
    summary="Follow one task's events until it finishes (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={**_STREAM_RESPONSE, **error_responses(404, 422)},
)
@inject
async def task_events(
    principal: Reader,
    task_id: TaskId,
    request: Request,
    follow: Annotated[FollowEvents, Depends(Provide[Container.follow_events])],
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    cursor = EventCursor(principal=principal, task_id=task_id, after_id=last_event_id or 0)
    return await _stream(request, follow, cursor, resume=last_event_id is not None)


@events_router.get(
    "/events",
    summary="Follow the events of every task you may see (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={**_STREAM_RESPONSE, **error_responses(422)},
)
@inject
async def events(
    principal: Reader,
    request: Request,
    follow: Annotated[FollowEvents, Depends(Provide[Container.follow_events])],
    status: Annotated[TaskStatus | None, Query(description="Only moves into this status.")] = None,
    priority: Annotated[Priority | None, Query(description="Only this priority.")] = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    cursor = EventCursor(
        principal=principal, status=status, priority=priority, after_id=last_event_id or 0
    )
    return await _stream(request, follow, cursor, resume=last_event_id is not None)


async def _stream(
    request: Request, follow: FollowEvents, cursor: EventCursor, *, resume: bool
) -> EventSourceResponse:
    # Opened before the response starts, so a missing task or scope is a problem, not a stream.
    await run_in_threadpool(follow.open, cursor, resume=resume)
    settings = request.app.state.container.settings()
    poll_seconds = settings.events_poll_seconds
    if cursor.task_id is None:
        events = request.app.state.event_feed.stream(follow, cursor, resumed=resume)
    else:
        events = _task_events(follow, cursor, poll_seconds)
    return EventSourceResponse(
        events, ping=settings.events_heartbeat_seconds, headers={"Cache-Control": "no-store"}
    )


async def _task_events(
    follow: FollowEvents, cursor: EventCursor, poll_seconds: float
) -> AsyncIterator[bytes]:
    """One task's stream reads on its own: it lives until its task finishes, its reads use the
    task's index, and its end needs the task read with its events (FollowEvents.next)."""
    while True:
        read_past = cursor.after_id
        if found := await run_in_threadpool(follow.next, cursor):
            yield encoded(found)
        if cursor.ended:
            return
        if cursor.after_id == read_past:  # caught up (events filtered out count as read)
            await asyncio.sleep(poll_seconds)

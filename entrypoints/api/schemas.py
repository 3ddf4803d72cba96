"""Request and response bodies of the API, and how a Task becomes its JSON.

Input is strict: operands and priorities are JSON integers, never booleans, floats or strings
that look like numbers; unknown fields are rejected, so a typo such as "priorty" is a 422 rather
than a silently ignored field."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    with_config,
)
from typing_extensions import TypedDict

from domain.priority import Priority
from domain.task import INT64_MAX, INT64_MIN, Task, TaskStatus, TaskType
from entrypoints.api.problems import Problem

# int64, so generated clients pick a 64-bit type (entrypoints.api.docs writes the bounds back as
# exact integers: FastAPI's OpenAPI model turns them into floats).
INT64_SCHEMA = {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}
Int64 = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX), WithJsonSchema(INT64_SCHEMA)]
PRIORITY_MARK = "x-taskman-priority"
# An integer enum, so generated clients offer exactly the three priorities; entrypoints.api.docs
# turns each use into a reference to one shared `Priority` schema.
PRIORITY_SCHEMA = {
    "type": "integer",
    "enum": [1, 2, 3],
    "description": "1 high, 2 medium, 3 low.",
    PRIORITY_MARK: True,
}
PriorityValue = Annotated[int, Field(strict=True, ge=1, le=3), WithJsonSchema(PRIORITY_SCHEMA)]


def _iso_utc(moment: datetime) -> str:
    # A store that drops the zone (SQLite) hands back naive UTC; answer with the offset anyway.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


UtcDatetime = Annotated[
    datetime,
    PlainSerializer(_iso_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# An RFC 3339 date-time, as its grammar has it (section 5.6): a full date, "T", a full time with
# optional fractions and a mandatory offset ("Z" or +hh:mm). Stricter than ISO 8601 parsers, which
# also take dates alone, week dates, missing offsets or Unix timestamps.
RFC3339_PATTERN = r"^(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339_PATTERN)


def _instant(value: object) -> datetime:
    """An RFC 3339 date-time as an aware UTC datetime; ValueError for anything else (an
    impossible date or time included). Fractions beyond microseconds are dropped."""
    found = _RFC3339.match(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError("an RFC 3339 date-time is expected, e.g. 2026-12-01T10:00:00Z")
    date_time, fraction, offset = found.groups()
    text = date_time.upper() + (fraction or "")[:7] + offset.upper()
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{value!r} is not a valid date-time: {error}") from None


# A query or body field holding an instant: strict RFC 3339, always with an offset.
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN},
    ),
]


@with_config(ConfigDict(extra="forbid"))
class PairIn(TypedDict):
    a: Int64
    b: Int64


class PairOut(TypedDict):
    a: int
    b: int


class CreateTaskBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"a": 10, "b": 20, "priority": 1}]}
    )

    a: Int64
    b: Int64
    priority: PriorityValue = 2


class CreateBatchBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "priority": 2}]
        },
    )

    pairs: Annotated[
        list[PairIn],
        Field(min_length=1, description="At least one pair; at most the configured limit."),
    ]
    priority: PriorityValue = 2


class ChangePriorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"priority": 1}]})

    priority: PriorityValue


def example_task(**fields: Any) -> dict[str, Any]:
    """A task as the API shows it, for the OpenAPI examples."""
    return {
        "id": 42,
        "type": "single",
        "status": "queued",
        "priority": 1,
        "a": 10,
        "b": 20,
        "result": None,
        "pairs": None,
        "results": None,
        "created_at": "2026-01-01T12:00:00+00:00",
        "started_at": None,
        "finished_at": None,
        "scheduled_for": "2026-01-01T12:00:00+00:00",
        "attempts": 0,
        "max_attempts": 3,
        "error_message": None,
        "updated_at": "2026-01-01T12:00:00+00:00",
        **fields,
    }


class TaskOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [example_task()]})

    id: int
    type: TaskType
    status: TaskStatus
    priority: Annotated[int, WithJsonSchema(PRIORITY_SCHEMA)]
    a: int | None = Field(description="First operand of a single task.")
    b: int | None = Field(description="Second operand of a single task.")
    result: int | None = Field(description="a + b, exact, once the task succeeded.")
    pairs: list[PairOut] | None = Field(description="The operands of a batch.")
    results: list[int] | None = Field(description="The sums of a batch, in the pairs' order.")
    created_at: UtcDatetime
    started_at: UtcDatetime | None = Field(description="Start of the latest attempt.")
    finished_at: UtcDatetime | None
    scheduled_for: UtcDatetime = Field(description="When the task becomes eligible to run.")
    attempts: int
    max_attempts: int
    error_message: str | None = Field(description="Why the last attempt failed.")
    updated_at: UtcDatetime

    @classmethod
    def of(cls, task: Task) -> "TaskOut":
        assert task.id is not None
        return cls(
            id=task.id,
            type=task.type,
            status=task.status,
            priority=int(task.priority),
            a=task.a,
            b=task.b,
            result=task.result,
            pairs=None if task.pairs is None else [{"a": a, "b": b} for a, b in task.pairs],
            results=task.results,
            created_at=task.created_at,
            started_at=task.started_at,
            finished_at=task.finished_at,
            scheduled_for=task.scheduled_for,
            attempts=task.attempts,
            max_attempts=task.max_attempts,
            error_message=task.error_message,
            updated_at=task.updated_at,
        )


class TaskPageOut(BaseModel):
    items: list[TaskOut] = Field(description="Newest first.")
    total: int | None = Field(
        description="How many tasks match the filters, over all pages: exact, from the counts "
        "kept per status, priority and type. With `created_after` or `created_before`, counted "
        "from the window's tasks if it holds at most 10,000 tasks (of any kind); null (not "
        "counted) otherwise."
    )
    limit: int
    offset: int
    next: int | None = Field(
        default=None,
        description="The cursor of the next page: pass it as `before_id` (the same filters and "
        'limit, no offset). Null on the last page. The `Link: <...>; rel="next"` header '
        "carries the whole URL.",
    )


def workers_by_queue(consumers: dict[Priority, int]) -> dict[str, int] | None:
    """None (unknown) when the broker could not say: a transport without broadcast answers
    nothing at all, which is not the same as no workers."""
    if not consumers:
        return None
    return {p.queue_name: consumers.get(p, 0) for p in Priority}


_WORKERS_DESCRIPTION = "Workers consuming each priority's queue (high, medium, low)."


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "database": "ok",
                    "broker": "ok",
                    "workers": {"high": 1, "medium": 1, "low": 1},
                }
            ]
        }
    )

    status: Literal["ok", "degraded"] = Field(
        description='"ok"; "degraded" when a priority\'s queue has no worker: its tasks are '
        "accepted and kept but do not run until one comes."
    )
    database: str
    broker: str
    workers: dict[str, int] | None = Field(
        description=_WORKERS_DESCRIPTION + " Null if the broker cannot tell."
    )


class LiveOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = Field(description="The API process answers; nothing else is asked.")


class ReadyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "database": "ok",
                    "broker": "ok",
                    "workers": {"high": 1, "medium": 1, "low": 1},
                }
            ]
        }
    )

    status: Literal["ready"] = Field(
        description="The store and the broker answer and every priority's queue has a worker."
    )
    database: str
    broker: str
    workers: dict[str, int] | None = Field(
        description=_WORKERS_DESCRIPTION + " Null if the broker cannot count them (a transport "
        "without broadcast): readiness then rests on the store and the broker."
    )


class HealthProblem(Problem):
    """A 503 problem that also names the state of each part."""

    database: str = Field(description='"ok", or why the store did not answer.')
    broker: str = Field(description='"ok", or why the broker did not answer.')
    workers: dict[str, int] | None = Field(description="Unknown (null) if the broker is down.")
    missing: list[str] | None = Field(
        default=None,
        description='/health/ready only: what is missing, among "database", "broker" and '
        'the queues ("high", "medium", "low") that no worker consumes.',
    )

"""Response bodies of a task's attempts, its explanation, its events and the console."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from application.ports import Attempt, AttemptResult, TaskEvent
from application.use_cases import (
    BulkAction,
    BulkMoveReport,
    DelayCause,
    Explanation,
    Overview,
    Reason,
    ReasonCode,
)
from domain.task import TaskStatus, TaskType
from entrypoints.api.schemas import PRIORITY_SCHEMA, Instant, PriorityValue, UtcDatetime

Priority = Annotated[int, WithJsonSchema(PRIORITY_SCHEMA)]
T0 = "2026-12-01T10:00:00.000000+00:00"


class AttemptOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "attempt": 1,
                    "dispatch_no": 1,
                    "priority": 1,
                    "scheduled_for": T0,
                    "started_at": "2026-12-01T10:00:00.004000+00:00",
                    "finished_at": "2026-12-01T10:00:00.006000+00:00",
                    "lateness_ms": 4,
                    "outcome": "success",
                    "error": None,
                    "worker": "high@box:4242",
                }
            ]
        }
    )

    attempt: int = Field(
        description="The task's attempt count at this claim (from 1 again after a manual retry)."
    )
    dispatch_no: int = Field(description="The dispatch number the attempt claimed.")
    priority: Priority
    scheduled_for: UtcDatetime = Field(description="When the task was due.")
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = Field(description="Null while it runs.")
    lateness_ms: int = Field(description="Start lateness: started_at - scheduled_for, in ms.")
    outcome: AttemptResult | None = Field(
        description="success; retried (it raised, the task was queued again); failed (it "
        "raised, the budget spent); lost (its lease expired); released (the worker gave the "
        "claim back before it began: not counted); null while it runs."
    )
    error: str | None = Field(default=None, description="What the attempt raised.")
    worker: str | None = Field(
        default=None,
        description="Who ran it: the worker's Celery node name and the id of its process that "
        "ran the attempt, `<node>:<pid>`; null if the claim named no worker.",
    )

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            attempt=attempt.number,
            dispatch_no=attempt.dispatch_no,
            priority=int(attempt.priority),
            scheduled_for=attempt.scheduled_for,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            lateness_ms=round(attempt.lateness.total_seconds() * 1000),
            outcome=attempt.outcome,
            error=attempt.error,
            worker=attempt.worker,
        )


class AttemptsOut(BaseModel):
    task_id: int
    items: list[AttemptOut] = Field(description="Oldest first.")


class ReasonOut(BaseModel):
    code: ReasonCode = Field(
        description="due_in, awaiting_publication, published, no_consumer, broker_unreachable, "
        "running, lease_expired, failed, cancelled, succeeded."
    )
    detail: str = Field(description="The reason in words, for people.")
    due_in_ms: int | None = None
    cause: DelayCause | None = Field(
        default=None, description="Why it is not due yet: priority_delay or retry_backoff."
    )
    scheduled_for: UtcDatetime | None = None
    published_at: UtcDatetime | None = None
    messages_ahead: int | None = Field(
        default=None,
        description="Messages waiting on its queue: about how many are ahead of it (its own "
        "may be among them).",
    )
    queue: str | None = None
    since: UtcDatetime | None = Field(default=None, description="Start of the running attempt.")
    lease_until: UtcDatetime | None = None
    worker: str | None = Field(
        default=None, description="The worker running the attempt (`<node>:<pid>`), if named."
    )
    attempts: int | None = None
    max_attempts: int | None = None
    error: str | None = None

    @classmethod
    def of(cls, reason: Reason) -> ReasonOut:
        fields = {name: getattr(reason, name) for name in Reason.__slots__}
        return cls(**fields)


class ExplanationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": 42,
                    "status": "queued",
                    "priority": 3,
                    "at": T0,
                    "reasons": [
                        {
                            "code": "due_in",
                            "detail": "due in 8412 ms (priority delay)",
                            "due_in_ms": 8412,
                            "cause": "priority_delay",
                            "scheduled_for": "2026-12-01T10:00:08.412000+00:00",
                        }
                    ],
                }
            ]
        }
    )

    task_id: int
    status: TaskStatus
    priority: Priority
    at: UtcDatetime = Field(description="The instant the reasons hold for.")
    reasons: list[ReasonOut]

    @classmethod
    def of(cls, explanation: Explanation) -> ExplanationOut:
        task = explanation.task
        assert task.id is not None
        return cls(
            task_id=task.id,
            status=task.status,
            priority=int(task.priority),
            at=explanation.at,
            reasons=[ReasonOut.of(reason) for reason in explanation.reasons],
        )


def event_data(event: TaskEvent) -> dict[str, Any]:
    """The `data:` of one Server-Sent Event (its `id:` is `event.id`)."""
    return {
        "event_id": event.id,
        "task_id": event.task_id,
        "status": event.status.value,
        "priority": int(event.priority),
        "at": event.at.isoformat(),
    }


class PanelOut(BaseModel):
    priority: Priority
    delay_ms: int = Field(description="The priority's start delay.")
    not_yet_due: int = Field(description="Queued, waiting for their start time.")
    due_waiting: int = Field(description="Queued and due: waiting for a worker.")
    running: int
    succeeded: int
    failed: int
    cancelled: int
    succeeded_per_minute: list[int] = Field(description="The last 5 minutes, oldest first.")
    lateness_p50_ms: int | None
    lateness_p99_ms: int | None
    attempts_sampled: int = Field(description="Attempts the lateness is computed from.")


class OverviewOut(BaseModel):
    at: UtcDatetime
    panels: list[PanelOut]

    @classmethod
    def of(cls, overview: Overview) -> OverviewOut:
        panels = [
            PanelOut(**{name: getattr(panel, name) for name in panel.__slots__})
            for panel in overview.panels
        ]
        return cls(at=overview.at, panels=panels)


class BulkFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TaskStatus | None = None
    type: TaskType | None = None
    priority: PriorityValue | None = None
    created_after: Instant | None = Field(
        default=None, description="Created at or after this instant (RFC 3339)."
    )
    created_before: Instant | None = Field(
        default=None, description="Created before this instant (RFC 3339)."
    )


class BulkBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"action": "cancel", "filter": {"status": "queued"}, "dry_run": True}]
        },
    )

    action: BulkAction = Field(description="retry, cancel or change_priority.")
    filter: BulkFilter = Field(default_factory=BulkFilter, description="The list's filters.")
    priority: PriorityValue | None = Field(
        default=None, description="The new priority: required by change_priority only."
    )
    dry_run: bool = Field(default=True, description="Only count the matching tasks.")

    @model_validator(mode="after")
    def _priority_with_its_action(self) -> BulkBody:
        if (self.action is BulkAction.CHANGE_PRIORITY) != (self.priority is not None):
            raise ValueError("priority is given with change_priority, and only with it")
        return self


class BulkOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"matched": 12, "dry_run": False, "moved": 12, "skipped": 0, "more": False}
            ]
        }
    )

    matched: int | None = Field(
        description="Tasks matching the filter when the call began; with a creation time in "
        "the filter, counted as the list's `total` is: null when not counted."
    )
    dry_run: bool
    moved: int
    skipped: int = Field(description="Matched, but the state machine refused the move.")
    more: bool = Field(description="The per-call limit stopped the walk: call again.")

    @classmethod
    def of(cls, report: BulkMoveReport) -> BulkOut:
        return cls(
            matched=report.matched,
            dry_run=report.dry_run,
            moved=report.moved,
            skipped=report.skipped,
            more=report.more,
        )

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from application.errors import TaskNotFound
from application.ports import Clock, QueueUnavailable, TaskQueue, UnitOfWork
from domain.access import BUILT_IN, Principal, Scope
from domain.task import Task, TaskStatus


class ReasonCode(StrEnum):
    DUE_IN = "due_in"
    AWAITING_PUBLICATION = "awaiting_publication"
    PUBLISHED = "published"
    NO_CONSUMER = "no_consumer"
    BROKER_UNREACHABLE = "broker_unreachable"
    RUNNING = "running"
    LEASE_EXPIRED = "lease_expired"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUCCEEDED = "succeeded"


class DelayCause(StrEnum):
    PRIORITY_DELAY = "priority_delay"
    RETRY_BACKOFF = "retry_backoff"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """One reason, with the numbers behind it; the fields that do not apply to its code are
    None. Times are UTC; `due_in_ms` is milliseconds from the explanation's `at`."""

    code: ReasonCode
    detail: str
    due_in_ms: int | None = None
    cause: DelayCause | None = None
    scheduled_for: datetime | None = None
    published_at: datetime | None = None
    messages_ahead: int | None = None
    queue: str | None = None
    since: datetime | None = None
    lease_until: datetime | None = None
    worker: str | None = None
    attempts: int | None = None
    max_attempts: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    task: Task
    at: datetime
    reasons: list[Reason]


class ExplainTask:
    """Why a task is not finished yet (or how it finished), as reasons with numbers, read from
    the store and the broker at one instant:

    - queued, not yet due: `due_in` N ms, caused by its priority's delay or a retry's backoff;
    - queued, due, unpublished: `awaiting_publication` (the dispatcher's next round takes it);
    - queued, published: `published`, with about K messages waiting on its queue (an upper
      bound of those ahead of it: its own may be among them);
    - any queued task whose queue no worker consumes: `no_consumer`; broker unreachable:
      `broker_unreachable` (the task is safe in the store, see docs/architecture.md);
    - running: `running` on worker W since T, lease until T (`lease_expired` once it ran out:
      the dispatcher hands the task on);
    - finished: `failed` (error, attempts), `cancelled`, `succeeded`.

    The principal needs tasks:read; another tenant's task is TaskNotFound, as in GetTask."""

    def __init__(self, uow: UnitOfWork, queue: TaskQueue, clock: Clock) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock

    def execute(self, task_id: int, principal: Principal = BUILT_IN) -> Explanation:
        principal.require(Scope.READ)
        with self._uow:
            task = self._uow.tasks.get(task_id)
        if task is None or not principal.sees(task.tenant):
            raise TaskNotFound(task_id)
        now = self._clock.now()
        if task.status is TaskStatus.QUEUED:
            reasons = self._queued(task, now)
        else:
            reasons = [_not_queued(task, now)]
        return Explanation(task, now, reasons)

    def _queued(self, task: Task, now: datetime) -> list[Reason]:
        queue = task.priority.queue_name
        reasons = []
        if not task.is_due(now):
            retrying = task.attempts > 0 and task.error_message is not None
            cause = DelayCause.RETRY_BACKOFF if retrying else DelayCause.PRIORITY_DELAY
            due_in_ms = _ms(task.scheduled_for - now)
            reasons.append(
                Reason(
                    code=ReasonCode.DUE_IN,
                    detail=f"due in {due_in_ms} ms ({cause.value.replace('_', ' ')})",
                    due_in_ms=due_in_ms,
                    cause=cause,
                    scheduled_for=task.scheduled_for,
                )
            )
        elif task.published_at is None:
            reasons.append(
                Reason(
                    code=ReasonCode.AWAITING_PUBLICATION,
                    detail="due; the dispatcher publishes it in its next round",
                    scheduled_for=task.scheduled_for,
                )
            )
        try:
            if task.published_at is not None:
                waiting = self._queue.pending(task.priority)
                reasons.append(
                    Reason(
                        code=ReasonCode.PUBLISHED,
                        detail=f"published; about {waiting} messages wait on queue {queue}",
                        published_at=task.published_at,
                        messages_ahead=waiting,
                        queue=queue,
                    )
                )
            if self._queue.consumers().get(task.priority, 0) == 0:
                reasons.append(
                    Reason(
                        code=ReasonCode.NO_CONSUMER,
                        detail=f"no worker consumes queue {queue}",
                        queue=queue,
                    )
                )
        except QueueUnavailable:
            reasons.append(
                Reason(
                    code=ReasonCode.BROKER_UNREACHABLE,
                    detail="the broker is unreachable; the task waits in the store",
                    queue=queue,
                )
            )
        return reasons


def _not_queued(task: Task, now: datetime) -> Reason:
    if task.status is TaskStatus.RUNNING:
        assert task.started_at is not None and task.lease_expires_at is not None
        expired = task.lease_expired(now)
        on = f" on worker {task.worker}" if task.worker else ""
        return Reason(
            code=ReasonCode.LEASE_EXPIRED if expired else ReasonCode.RUNNING,
            detail=(
                f"its worker{on.removeprefix(' on worker')} was lost; the dispatcher hands it on"
                if expired
                else f"running attempt {task.attempts} of {task.max_attempts}{on} since "
                f"{task.started_at.isoformat()}, lease until {task.lease_expires_at.isoformat()}"
            ),
            since=task.started_at,
            lease_until=task.lease_expires_at,
            worker=task.worker,
            attempts=task.attempts,
            max_attempts=task.max_attempts,
        )
    if task.status is TaskStatus.FAILED:
        return Reason(
            code=ReasonCode.FAILED,
            detail=f"failed after {task.attempts} attempts: {task.error_message}",
            error=task.error_message,
            attempts=task.attempts,
            max_attempts=task.max_attempts,
        )
    if task.status is TaskStatus.CANCELLED:
        return Reason(code=ReasonCode.CANCELLED, detail="cancelled")
    return Reason(code=ReasonCode.SUCCEEDED, detail="succeeded", attempts=task.attempts)


def _ms(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds() * 1000))

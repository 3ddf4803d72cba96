"""The task entity and its state machine.

    create ──▶ queued ──claim──▶ running ──complete──▶ success
                 ▲ │                │
   re-prioritise ┘ │ cancel         ├─ attempt fails, budget left ─▶ queued (after backoff)
                   │                ├─ released before it began ──▶ queued (attempt not counted)
                   ▼                ├─ lease expired ─────────────▶ queued (attempt stays counted)
               cancelled            └─ attempt fails, budget spent ─▶ failed ──retry──▶ queued

Every time a task (re-)enters `queued` its dispatch number grows and it becomes unpublished, so
any message published for an earlier dispatch number is recognised as stale and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.access import DEFAULT_TENANT
from domain.errors import IllegalTransition, InvalidOperands, TaskFailure
from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Pair = tuple[int, int]


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskType(StrEnum):
    SINGLE = "single"
    BATCH = "batch"


# What an attempt's outcome (`complete`, `fail_attempt`) changes. Every other field is either
# fixed while the task runs or is a legal concurrent move's to change (a new priority recorded on
# a running task): the store writes an outcome back as these fields only, so that move is kept.
ATTEMPT_OUTCOME_FIELDS = (
    "status",
    "attempts",
    "result",
    "results",
    "error_message",
    "finished_at",
    "lease_expires_at",
    "scheduled_for",
    "dispatch_no",
    "published_at",
    "updated_at",
)

LEASE_EXPIRED_MESSAGE = "the worker running this attempt was lost (lease expired)"


def check_operand(value: object) -> int:
    # bool is a subclass of int, and True + True == 2 is not an addition anyone asked for.
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        raise InvalidOperands(
            f"operands must be integers in the signed 64-bit range, not {value!r}"
        )
    return value


@dataclass(eq=False, kw_only=True)
class Task:
    id: int | None
    type: TaskType
    status: TaskStatus
    priority: Priority
    a: int | None
    b: int | None
    result: int | None
    pairs: list[Pair] | None
    results: list[int] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    scheduled_for: datetime
    attempts: int
    max_attempts: int
    error_message: str | None
    dispatch_no: int
    published_at: datetime | None
    lease_expires_at: datetime | None
    version: int = 0
    # Who owns it: only its tenant (or an admin) reads, lists and moves it. Fixed at creation.
    tenant: str = DEFAULT_TENANT
    # Which worker claimed its latest attempt (None: never claimed, or by an unnamed one). Set
    # by the claim only; it stays after the attempt ends, as the name of who ran it last.
    worker: str | None = None

    # ----- creation -------------------------------------------------------------------------

    @classmethod
    def single(
        cls,
        a: object,
        b: object,
        *,
        priority: Priority,
        now: datetime,
        schedule: SchedulePolicy,
        max_attempts: int,
        tenant: str = DEFAULT_TENANT,
    ) -> Task:
        return cls._new(
            TaskType.SINGLE,
            a=check_operand(a),
            b=check_operand(b),
            pairs=None,
            priority=priority,
            now=now,
            schedule=schedule,
            max_attempts=max_attempts,
            tenant=tenant,
        )

    @classmethod
    def batch(
        cls,
        pairs: Sequence[tuple[object, object]],
        *,
        priority: Priority,
        now: datetime,
        schedule: SchedulePolicy,
        max_attempts: int,
        tenant: str = DEFAULT_TENANT,
    ) -> Task:
        if not pairs:
            raise InvalidOperands("a batch holds at least one pair")
        checked = [(check_operand(a), check_operand(b)) for a, b in pairs]
        return cls._new(
            TaskType.BATCH,
            a=None,
            b=None,
            pairs=checked,
            priority=priority,
            now=now,
            schedule=schedule,
            max_attempts=max_attempts,
            tenant=tenant,
        )

    @classmethod
    def _new(
        cls,
        type_: TaskType,
        *,
        a: int | None,
        b: int | None,
        pairs: list[Pair] | None,
        priority: Priority,
        now: datetime,
        schedule: SchedulePolicy,
        max_attempts: int,
        tenant: str,
    ) -> Task:
        return cls(
            id=None,
            type=type_,
            status=TaskStatus.QUEUED,
            priority=priority,
            a=a,
            b=b,
            result=None,
            pairs=pairs,
            results=None,
            created_at=now,
            updated_at=now,
            started_at=None,
            finished_at=None,
            scheduled_for=now + schedule.delay_for(priority),
            attempts=0,
            max_attempts=max_attempts,
            error_message=None,
            dispatch_no=1,
            published_at=None,
            lease_expires_at=None,
            tenant=tenant,
        )

    # ----- queries --------------------------------------------------------------------------

    @property
    def operands(self) -> list[Pair]:
        if self.type is TaskType.SINGLE:
            assert self.a is not None and self.b is not None
            return [(self.a, self.b)]
        assert self.pairs is not None
        return self.pairs

    @property
    def is_finished(self) -> bool:
        return self.status in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)

    def is_due(self, now: datetime) -> bool:
        return self.status is TaskStatus.QUEUED and self.scheduled_for <= now

    def should_publish(self, now: datetime) -> bool:
        """Whether a message is to be published for this task at `now`: it is queued, its start
        time has come, and no message was published for its current dispatch number yet.

        The one rule of publication: a create, a move that (re-)queues a task (change of
        priority, manual retry) and the dispatcher all publish exactly the tasks it names, and
        only after the task is committed."""
        return self.is_due(now) and self.published_at is None

    def can_claim(self, dispatch_no: int) -> bool:
        return self.status is TaskStatus.QUEUED and self.dispatch_no == dispatch_no

    def holds_claim(self, dispatch_no: int) -> bool:
        return self.status is TaskStatus.RUNNING and self.dispatch_no == dispatch_no

    def lease_expired(self, now: datetime) -> bool:
        return (
            self.status is TaskStatus.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at <= now
        )

    # ----- moves ----------------------------------------------------------------------------

    def change_priority(self, priority: Priority, now: datetime, schedule: SchedulePolicy) -> None:
        """Queued: re-scheduled from now on the new priority's delay. Running or failed: recorded
        for a later retry. Success or cancelled: illegal."""
        if self.status in (TaskStatus.SUCCESS, TaskStatus.CANCELLED):
            raise IllegalTransition(
                f"task {self.id} is {self.status}; its priority can no longer change"
            )
        self.priority = priority
        if self.status is TaskStatus.QUEUED:
            self._requeue(now + schedule.delay_for(priority))
        self.updated_at = now

    def mark_published(self, now: datetime) -> None:
        """The message for the current dispatch number reached the broker at `now`."""
        self.published_at = now

    def republish_lost(self, now: datetime) -> None:
        """The broker lost the message: a new dispatch number, published again at once."""
        if self.status is not TaskStatus.QUEUED:
            raise IllegalTransition(f"task {self.id} is {self.status}, not queued")
        self._requeue(now)
        self.updated_at = now

    def claim(
        self, dispatch_no: int, now: datetime, lease: timedelta, *, worker: str | None = None
    ) -> None:
        """Start an attempt at `now` for the worker named `worker`, its lease until now + lease."""
        if not self.can_claim(dispatch_no):
            raise IllegalTransition(
                f"task {self.id} cannot be claimed with dispatch {dispatch_no} "
                f"(status {self.status}, dispatch {self.dispatch_no})"
            )
        self.status = TaskStatus.RUNNING
        self.attempts += 1
        self.started_at = now
        self.lease_expires_at = now + lease
        self.updated_at = now
        self.worker = worker

    def complete(self, dispatch_no: int, sums: Sequence[int], now: datetime) -> None:
        self._require_claim(dispatch_no)
        if len(sums) != len(self.operands):
            raise ValueError(f"{len(sums)} sums for {len(self.operands)} pairs")
        if self.type is TaskType.SINGLE:
            self.result = sums[0]
        else:
            self.results = list(sums)
        self.status = TaskStatus.SUCCESS
        self.error_message = None
        self._finish(now)

    def fail_attempt(
        self, dispatch_no: int, failure: TaskFailure, now: datetime, retry: RetryPolicy
    ) -> None:
        """Budget left and the failure transient: queued again after a backoff. Otherwise failed."""
        self._require_claim(dispatch_no)
        self.error_message = str(failure) or type(failure).__name__
        if failure.permanent or self.attempts >= self.max_attempts:
            self.status = TaskStatus.FAILED
            self._finish(now)
            return
        self.lease_expires_at = None
        self._requeue(now + retry.backoff(self.attempts))
        self.updated_at = now

    def release(self, dispatch_no: int, now: datetime) -> None:
        """The claim is given back before the attempt's work began (the worker ran out of time
        for it): queued again at once under a new dispatch number, the attempt not counted."""
        self._require_claim(dispatch_no)
        self.attempts -= 1
        self.lease_expires_at = None
        self._requeue(now)
        self.updated_at = now

    def expire_lease(self, now: datetime) -> None:
        """The worker vanished mid-attempt: the attempt stays counted and the task runs again,
        unless that was its last attempt."""
        if not self.lease_expired(now):
            raise IllegalTransition(f"task {self.id} holds no expired lease")
        self.error_message = LEASE_EXPIRED_MESSAGE
        self.lease_expires_at = None
        if self.attempts >= self.max_attempts:
            self.status = TaskStatus.FAILED
            self._finish(now)
            return
        self._requeue(now)
        self.updated_at = now

    def retry(self, now: datetime, schedule: SchedulePolicy) -> None:
        """Manual retry of a failed task: a fresh budget, scheduled by its (maybe new) priority."""
        if self.status is not TaskStatus.FAILED:
            raise IllegalTransition(
                f"task {self.id} is {self.status}; only failed tasks are retried"
            )
        self.attempts = 0
        self.error_message = None
        self.finished_at = None
        self._requeue(now + schedule.delay_for(self.priority))
        self.updated_at = now

    def cancel(self, now: datetime) -> None:
        if self.status is not TaskStatus.QUEUED:
            raise IllegalTransition(
                f"task {self.id} is {self.status}; only queued tasks are cancelled"
            )
        self.status = TaskStatus.CANCELLED
        self._finish(now)

    # ----- helpers --------------------------------------------------------------------------

    def _requeue(self, eligible_at: datetime) -> None:
        self.status = TaskStatus.QUEUED
        self.scheduled_for = eligible_at
        self.dispatch_no += 1
        self.published_at = None

    def _finish(self, now: datetime) -> None:
        self.finished_at = now
        self.lease_expires_at = None
        self.updated_at = now

    def _require_claim(self, dispatch_no: int) -> None:
        if not self.holds_claim(dispatch_no):
            raise IllegalTransition(f"task {self.id} is not running under dispatch {dispatch_no}")


def add_pairs(pairs: Sequence[Pair]) -> list[int]:
    """Exact sums: Python integers never overflow, so 2**62 + 2**62 is 2**63."""
    return [a + b for a, b in pairs]

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from application.ports import Clock, IdempotencyKey, Metrics, NullMetrics, TaskQueue, UnitOfWork
from application.use_cases._acceptance import (
    DEFAULT_KEY_TTL,
    NO_QUOTA,
    Candidate,
    IdempotentResponse,
    Outcome,
    Quota,
    accept,
)
from domain.access import BUILT_IN, Principal, Scope
from domain.errors import DomainError
from domain.priority import Priority, SchedulePolicy
from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTaskRequest:
    a: object
    b: object
    priority: Priority = Priority.MEDIUM
    idempotency: IdempotencyKey | None = None
    # Who creates it: the task is its tenant's. Needs the tasks:write scope.
    principal: Principal = BUILT_IN


class CreateTask:
    """Accept one addition `a + b`, or many at once.

    Rules: both operands are integers in the signed 64-bit range; the task starts after its
    priority's delay; a task with no delay is published to its queue at once. Many requests
    accepted together share one transaction and one publish: each is accepted exactly as it
    would be alone, and a request the rules refuse does not hold back the others.

    A request with an idempotency key creates its task only if the key holds no record younger
    than `key_ttl`: the first response is recorded with the task and given again to a request
    with the same key and fingerprint (IdempotentResponse, replayed); another fingerprint is
    IdempotencyKeyReused. The principal needs tasks:write (Forbidden); its tenant owns the
    task, and may hold no more queued tasks than `quota` allows (QuotaExceeded)."""

    def __init__(
        self,
        uow: UnitOfWork,
        queue: TaskQueue,
        clock: Clock,
        schedule: SchedulePolicy,
        max_attempts: int,
        *,
        key_ttl: timedelta = DEFAULT_KEY_TTL,
        quota: Quota = NO_QUOTA,
        metrics: Metrics | None = None,
    ) -> None:
        self._uow = uow
        self._metrics = metrics or NullMetrics()
        self._queue = queue
        self._clock = clock
        self._schedule = schedule
        self._max_attempts = max_attempts
        self._key_ttl = key_ttl
        self._quota = quota

    def execute(self, request: CreateTaskRequest) -> Task | IdempotentResponse:
        """The new task (an IdempotentResponse if the request has a key). Raises the
        DomainError the request broke, or the store's or broker's failure."""
        (outcome,) = self.execute_all([request])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def execute_all(self, requests: Sequence[CreateTaskRequest]) -> list[Outcome]:
        """One outcome per request, in order: its accepted task (an IdempotentResponse if it
        has a key), or the rule it broke. A failure of the store or the broker is every
        request's, and raises."""
        now = self._clock.now()
        candidates = [
            Candidate(partial(self._task, request, now), request.idempotency)
            for request in requests
        ]
        return accept(
            candidates,
            self._uow,
            self._queue,
            self._clock,
            now,
            self._key_ttl,
            self._quota,
            self._metrics,
        )

    def _task(self, request: CreateTaskRequest, now: datetime) -> Task:
        request.principal.require(Scope.WRITE)
        return Task.single(
            request.a,
            request.b,
            priority=request.priority,
            now=now,
            schedule=self._schedule,
            max_attempts=self._max_attempts,
            tenant=request.principal.tenant,
        )

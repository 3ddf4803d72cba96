from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from application.ports import Clock, IdempotencyKey, Metrics, NullMetrics, TaskQueue, UnitOfWork
from application.use_cases._acceptance import (
    DEFAULT_KEY_TTL,
    NO_QUOTA,
    Candidate,
    IdempotentResponse,
    Quota,
    accept,
)
from domain.access import BUILT_IN, Principal, Scope
from domain.errors import BatchTooLarge, DomainError
from domain.priority import Priority, SchedulePolicy
from domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateBatchRequest:
    pairs: Sequence[tuple[object, object]]
    priority: Priority = Priority.MEDIUM
    idempotency: IdempotencyKey | None = None
    principal: Principal = BUILT_IN


class CreateBatch:
    """Accept a batch of additions run as one task.

    Rules: 1..max_pairs pairs (more is BatchTooLarge), each operand an int64; the sums come back
    in the order of the pairs; scheduling, publication and idempotency keys as for a single
    task (see CreateTask); the principal needs tasks:write, and its tenant's queued tasks and
    queued batch pairs stay within `quota` (QuotaExceeded)."""

    def __init__(
        self,
        uow: UnitOfWork,
        queue: TaskQueue,
        clock: Clock,
        schedule: SchedulePolicy,
        max_attempts: int,
        max_pairs: int,
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
        self._max_pairs = max_pairs
        self._key_ttl = key_ttl
        self._quota = quota

    def execute(self, request: CreateBatchRequest) -> Task | IdempotentResponse:
        """The new task (an IdempotentResponse if the request has a key). Raises the
        DomainError the request broke, or the store's or broker's failure."""
        request.principal.require(Scope.WRITE)
        if len(request.pairs) > self._max_pairs:
            raise BatchTooLarge(len(request.pairs), self._max_pairs)
        now = self._clock.now()

        def build() -> Task:
            return Task.batch(
                request.pairs,
                priority=request.priority,
                now=now,
                schedule=self._schedule,
                max_attempts=self._max_attempts,
                tenant=request.principal.tenant,
            )

        candidate = Candidate(build, request.idempotency)
        (outcome,) = accept(
            [candidate],
            self._uow,
            self._queue,
            self._clock,
            now,
            self._key_ttl,
            self._quota,
            self._metrics,
        )
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

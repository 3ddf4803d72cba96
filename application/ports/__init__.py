"""The ports: what the use cases need from the outside world, as Protocols."""

from application.ports.api_keys import ApiKeys
from application.ports.arithmetic import Arithmetic
from application.ports.clock import Clock
from application.ports.history import Attempt, TaskEvent, TaskHistory
from application.ports.idempotency import (
    IdempotencyKey,
    IdempotencyKeys,
    IdempotencyRecord,
    StoredResponse,
)
from application.ports.metrics import AttemptResult, Metrics, NullMetrics
from application.ports.queue import Dispatch, QueueUnavailable, TaskQueue
from application.ports.rate_limit import RateDecision, RateLimiter
from application.ports.repository import (
    QueuedLoad,
    StoreBusy,
    StoreUnavailable,
    TaskCounts,
    TaskFilter,
    TaskPage,
    TaskRepository,
    UnitOfWork,
)

__all__ = [
    "ApiKeys",
    "Arithmetic",
    "Attempt",
    "AttemptResult",
    "Clock",
    "Dispatch",
    "IdempotencyKey",
    "IdempotencyKeys",
    "IdempotencyRecord",
    "Metrics",
    "NullMetrics",
    "QueueUnavailable",
    "QueuedLoad",
    "RateDecision",
    "RateLimiter",
    "StoreBusy",
    "StoreUnavailable",
    "StoredResponse",
    "TaskCounts",
    "TaskEvent",
    "TaskFilter",
    "TaskHistory",
    "TaskPage",
    "TaskQueue",
    "TaskRepository",
    "UnitOfWork",
]

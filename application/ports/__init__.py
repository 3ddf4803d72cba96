"""The ports: what the use cases need from the outside world, as Protocols."""

from application.ports.arithmetic import Arithmetic
from application.ports.clock import Clock
from application.ports.idempotency import (
    IdempotencyKey,
    IdempotencyKeys,
    IdempotencyRecord,
    StoredResponse,
)
from application.ports.queue import Dispatch, QueueUnavailable, TaskQueue
from application.ports.repository import (
    StoreBusy,
    StoreUnavailable,
    TaskFilter,
    TaskPage,
    TaskRepository,
    UnitOfWork,
)

__all__ = [
    "Arithmetic",
    "Clock",
    "Dispatch",
    "IdempotencyKey",
    "IdempotencyKeys",
    "IdempotencyRecord",
    "QueueUnavailable",
    "StoreBusy",
    "StoreUnavailable",
    "StoredResponse",
    "TaskFilter",
    "TaskPage",
    "TaskQueue",
    "TaskRepository",
    "UnitOfWork",
]

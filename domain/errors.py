"""Errors the domain raises; the API turns each into one HTTP problem."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every business-rule violation."""


class InvalidOperands(DomainError):
    """An operand is not an integer in the signed 64-bit range, or a batch is empty."""


class BatchTooLarge(DomainError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a batch holds at most {limit} pairs; this one has {size}")
        self.size = size
        self.limit = limit


class IllegalTransition(DomainError):
    """The state machine forbids this move from the task's current status."""


class TaskFailure(Exception):
    """An attempt's computation failed. Transient failures are retried with backoff."""

    permanent = False


class PermanentTaskFailure(TaskFailure):
    """A failure that no retry can fix: the task fails at once."""

    permanent = True


class IdempotencyKeyReused(DomainError):
    """An idempotency key came back with another request than the one it first came with."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was first used with another request; "
            "use a new key for a new request"
        )
        self.key = key


class IdempotencyKeyInFlight(DomainError):
    """The first request with this idempotency key is still being processed."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"a request with idempotency key {key!r} is still being processed; retry shortly"
        )
        self.key = key

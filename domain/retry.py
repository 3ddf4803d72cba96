"""Automatic retry: exponential backoff with jitter. The budget of attempts is each task's own
(`Task.max_attempts`), fixed when it is created."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n (1-based) that fails waits base * 2**(n-1), capped, scaled by a jitter factor.

    The jitter factor is drawn from [1 - jitter, 1] ("equal jitter"), so retries of tasks that
    failed together spread out while the delay still grows with every attempt.
    """

    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(minutes=5)
    jitter: float = 0.5
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def backoff(self, attempt: int) -> timedelta:
        # Compared as a float of seconds, since a timedelta of base * 2**60 would overflow.
        exponential = self.backoff_base.total_seconds() * 2.0 ** min(max(attempt - 1, 0), 1000)
        capped = timedelta(seconds=min(exponential, self.backoff_cap.total_seconds()))
        return capped * (1.0 - self.jitter * self.random())

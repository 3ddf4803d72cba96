"""Per-tenant rate limits: a token bucket per tenant and limited act."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class RateDecision:
    """One take from a bucket.

    `allowed`: the request may go on. `remaining`: whole tokens left after it. `retry_after`:
    seconds until a token is back (0 when one is left). `full_after`: seconds until the bucket
    is full again."""

    allowed: bool
    remaining: int
    retry_after: float
    full_after: float


class RateLimiter(Protocol):
    """A token bucket per key: `burst` tokens at most, refilled at `rate` tokens a second; each
    take costs one. Shared by every API process that uses the same store (Redis); the
    in-process one is per process."""

    rate: float
    burst: int

    def take(self, key: str) -> RateDecision:
        """Take a token from `key`'s bucket if it holds one; atomic against concurrent takes.
        Raises the store's error if it cannot be reached."""

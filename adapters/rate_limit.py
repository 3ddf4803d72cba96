"""Token buckets per tenant: in Redis (shared by every API process) or in this process.

With BROKER_URL on Redis the buckets live there, one hash per key, taken from by one Lua script
so a take is atomic and costs one round trip; the script reads Redis's own clock, so API
processes on machines whose clocks disagree still share one rate. On the embedded defaults
(no Redis) each API process keeps its own buckets: that is a developer's machine, where a
limit is a convenience, and a bucket in SQLite would add a write, and the write lock, to
every create. With API_WORKERS=n such a limit is n times the configured one.

If Redis cannot be reached a take is allowed (and logged): the task store, not Redis, decides
whether a create is accepted, and a broker outage must not stop creates the dispatcher will
publish once it is back."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import redis

from application.ports import RateDecision, RateLimiter

log = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV rate (tokens/s), burst. Returns {allowed, tokens left * 1000,
# ms until a token is back, ms until full}. Idle buckets expire once they would be full anyway.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
local full_ms = math.ceil((burst - tokens) / rate * 1000)
redis.call('PEXPIRE', KEYS[1], math.max(full_ms, 1000))
local retry_ms = 0
if tokens < 1 then retry_ms = math.ceil((1 - tokens) / rate * 1000) end
return {allowed, math.floor(tokens * 1000), retry_ms, full_ms}
"""


def _decision(allowed: bool, tokens: float, rate: float, burst: int) -> RateDecision:
    return RateDecision(
        allowed=allowed,
        remaining=math.floor(tokens),
        retry_after=0.0 if tokens >= 1 else (1 - tokens) / rate,
        full_after=(burst - tokens) / rate,
    )


class InProcessTokenBucket(RateLimiter):
    """Buckets in this process's memory, for the embedded defaults (see the module)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> RateDecision:
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            return _decision(allowed, tokens, self.rate, self.burst)


class RedisTokenBucket(RateLimiter):
    """Buckets in Redis under `taskman:ratelimit:<key>`, shared by every API process."""

    PREFIX = "taskman:ratelimit:"

    def __init__(self, client: redis.Redis, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str, rate: float, burst: int) -> RedisTokenBucket:
        # Short timeouts: a create should fail fast (503) rather than hang on a dead Redis.
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, rate, burst)

    def take(self, key: str) -> RateDecision:
        try:
            allowed, milli_tokens, retry_ms, full_ms = self._take(
                keys=[self.PREFIX + key], args=[repr(self.rate), self.burst]
            )
        except redis.RedisError as error:
            log.warning("rate limit not checked, Redis unreachable: %s", type(error).__name__)
            return RateDecision(allowed=True, remaining=0, retry_after=0.0, full_after=0.0)
        return RateDecision(
            allowed=bool(allowed),
            remaining=int(milli_tokens) // 1000,
            retry_after=int(retry_ms) / 1000,
            full_after=int(full_ms) / 1000,
        )

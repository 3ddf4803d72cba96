"""The Redis token bucket (adapters.rate_limit) against a real Redis: exact counts, one bucket
shared by every client (as by every API process), a bucket per tenant, and a Redis that cannot
be reached lets creates through rather than failing them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from adapters.rate_limit import RedisTokenBucket
from tests.integration.celery_stack import redis_database
from tests.processes import free_port

# One token per 1000 s: nothing refills while a test runs, so every count is exact.
SLOW = 0.001


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


def test_a_bucket_gives_exactly_its_burst_then_refuses(redis_url: str) -> None:
    bucket = RedisTokenBucket.from_url(redis_url, SLOW, 5)

    decisions = [bucket.take("acme") for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 999 <= decisions[-1].retry_after <= 1000
    assert 4999 <= decisions[-1].full_after <= 5000


def test_api_processes_share_one_bucket_per_tenant_even_when_taking_at_once(
    redis_url: str,
) -> None:
    # Two limiters, two connection pools: as two API processes would hold them.
    first = RedisTokenBucket.from_url(redis_url, SLOW, 20)
    second = RedisTokenBucket.from_url(redis_url, SLOW, 20)
    with ThreadPoolExecutor(8) as pool:
        takes = list(pool.map(lambda i: (first, second)[i % 2].take("acme"), range(50)))

    assert sum(d.allowed for d in takes) == 20
    assert first.take("globex").allowed  # another tenant's bucket is untouched


def test_it_refills_at_its_rate(redis_url: str) -> None:
    bucket = RedisTokenBucket.from_url(redis_url, 1.0, 2)
    client = redis.Redis.from_url(redis_url)
    bucket.take("acme")
    bucket.take("acme")
    # Move the bucket's last take 100 s into the past: 100 tokens' worth at 1/s, capped at 2
    # (the takes below then have a second before the next token comes back).
    at = float(client.hget(f"{RedisTokenBucket.PREFIX}acme", "at") or 0)
    client.hset(f"{RedisTokenBucket.PREFIX}acme", "at", repr(at - 100))

    assert [bucket.take("acme").allowed for _ in range(3)] == [True, True, False]


def test_an_unreachable_redis_lets_the_create_through() -> None:
    bucket = RedisTokenBucket.from_url(f"redis://127.0.0.1:{free_port()}/0", SLOW, 1)

    assert all(bucket.take("acme").allowed for _ in range(3))

"""Per-tenant rate limits and quotas (issue 15 part 4), counted exactly: the create that finds
its tenant's bucket empty or its quota full is 429 with Retry-After and the RateLimit-Policy and
RateLimit fields, and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.rate_limit import InProcessTokenBucket
from application.use_cases import CreateTaskRequest, Quota
from domain.access import Principal, QuotaExceeded, Scope
from entrypoints.api.app import rate_limiter
from entrypoints.settings import Settings
from tests.unit.api.conftest import TEST_SETTINGS, Api, build_api
from tests.unit.api.shapes import assert_problem

TASKS = "/api/v1/tasks"
BATCH = f"{TASKS}/batch"


def _settings(**changes: Any) -> Settings:
    return Settings(
        **{**TEST_SETTINGS.model_dump(), "auth": "required", "api_key_pepper": "p", **changes}
    )


@pytest.fixture
def limited() -> Iterator[tuple[Api, dict[str, dict[str, str]]]]:
    # One token per 1000 s: the bucket refills nothing while the test runs, so counts are exact.
    api = build_api(
        _settings(
            rate_limit_creates_per_second=0.001,
            rate_limit_burst=3,
            quota_queued_tasks=0,
            quota_batch_pairs=0,
        )
    )
    headers = {
        tenant: {"Authorization": f"Bearer {_key(api, tenant)}"} for tenant in ("acme", "globex")
    }
    yield api, headers
    api.container.unwire()


def _key(api: Api, tenant: str) -> str:
    scopes = frozenset({Scope.READ, Scope.WRITE})
    return api.container.issue_api_key().execute(tenant, scopes).key


def test_a_tenant_makes_exactly_burst_creates_then_429_with_the_draft_s_fields(
    limited: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, headers = limited
    statuses = [
        api.client.post(TASKS, json={"a": i, "b": 0}, headers=headers["acme"]).status_code
        for i in range(3)
    ]
    refused = api.client.post(BATCH, json={"pairs": [{"a": 1, "b": 1}]}, headers=headers["acme"])

    assert statuses == [201, 201, 201]
    assert_problem(refused, 429, "rate-limited")
    # A token comes back every 1000 s; the bucket of 3 is full again after 3000.
    assert 999 <= int(refused.headers["Retry-After"]) <= 1000
    assert refused.headers["RateLimit-Policy"] == '"creates";q=3;w=3000'
    assert refused.headers["RateLimit"].startswith('"creates";r=0;t=')
    assert 2999 <= int(refused.headers["RateLimit"].rsplit("=", 1)[1]) <= 3000
    assert len(api.uow.store.rows) == 3


def test_each_tenant_has_its_own_bucket_and_reads_are_not_limited(
    limited: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, headers = limited
    for _ in range(3):
        api.client.post(TASKS, json={"a": 1, "b": 2}, headers=headers["acme"])

    other = [
        api.client.post(TASKS, json={"a": 1, "b": 2}, headers=headers["globex"]).status_code
        for _ in range(4)
    ]
    reads = {api.client.get(TASKS, headers=headers["acme"]).status_code for _ in range(10)}

    assert other == [201, 201, 201, 429]
    assert reads == {200}


def test_a_request_refused_before_the_limit_costs_no_token(
    limited: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, headers = limited
    # No key: 401 before any token is taken; acme's three are still there.
    for _ in range(5):
        assert api.client.post(TASKS, json={"a": 1, "b": 2}).status_code == 401
    statuses = [
        api.client.post(TASKS, json={"a": 1, "b": 2}, headers=headers["acme"]).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_the_in_process_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [100.0]
    bucket = InProcessTokenBucket(rate=2.0, burst=4, clock=lambda: now[0])

    first = [bucket.take("acme").allowed for _ in range(5)]
    now[0] += 1.0  # two tokens back
    second = [bucket.take("acme").allowed for _ in range(3)]
    now[0] += 60.0  # full again, not more
    third = [bucket.take("acme").allowed for _ in range(5)]
    empty = bucket.take("acme")

    assert first == [True, True, True, True, False]
    assert second == [True, True, False]
    assert third == [True, True, True, True, False]
    assert (empty.remaining, empty.retry_after, empty.full_after) == (0, 0.5, 2.0)


def test_limits_are_off_with_auth_off_unless_set_and_on_by_default_with_auth_required() -> None:
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    required = Settings(_env_file=None, auth="required")  # type: ignore[call-arg]
    set_alone = Settings(_env_file=None, rate_limit_creates_per_second=5)  # type: ignore[call-arg]
    turned_off = Settings(  # type: ignore[call-arg]
        _env_file=None, auth="required", rate_limit_creates_per_second=0, quota_queued_tasks=0
    )

    assert rate_limiter(plain) is None and not plain.quota().enforced
    limiter = rate_limiter(required)
    assert limiter is not None and (limiter.rate, limiter.burst) == (50.0, 100)
    assert required.quota() == Quota(queued_tasks=10_000, batch_pairs=1_000_000)
    set_limiter = rate_limiter(set_alone)
    assert set_limiter is not None and (set_limiter.rate, set_limiter.burst) == (5.0, 10)
    assert rate_limiter(turned_off) is None
    assert turned_off.quota() == Quota(queued_tasks=None, batch_pairs=1_000_000)


@pytest.fixture
def quota_api() -> Iterator[tuple[Api, dict[str, dict[str, str]]]]:
    api = build_api(
        _settings(rate_limit_creates_per_second=0, quota_queued_tasks=3, quota_batch_pairs=5)
    )
    headers = {
        tenant: {"Authorization": f"Bearer {_key(api, tenant)}"} for tenant in ("acme", "globex")
    }
    yield api, headers
    api.container.unwire()


def test_a_tenant_queues_exactly_its_quota_of_tasks_and_a_finished_one_frees_a_place(
    quota_api: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, headers = quota_api
    acme = headers["acme"]
    statuses = [
        api.client.post(TASKS, json={"a": 1, "b": 2}, headers=acme).status_code for _ in range(3)
    ]
    refused = api.client.post(TASKS, json={"a": 1, "b": 2}, headers=acme)
    other = api.client.post(TASKS, json={"a": 1, "b": 2}, headers=headers["globex"])
    api.client.post(f"{TASKS}/1/cancel", headers=acme)
    after_cancel = api.client.post(TASKS, json={"a": 1, "b": 2}, headers=acme)

    assert statuses == [201, 201, 201]
    body = assert_problem(refused, 429, "quota-exceeded")
    assert "3" in body["detail"]
    assert refused.headers["Retry-After"] == "5"
    assert refused.headers["RateLimit-Policy"] == '"queued-tasks";q=3'
    assert refused.headers["RateLimit"] == '"queued-tasks";r=0;t=5'
    assert other.status_code == 201
    assert after_cancel.status_code == 201
    assert len(api.uow.store.rows) == 5  # the refused create stored nothing


def test_batches_count_their_pairs_against_the_batch_pairs_quota(
    quota_api: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, headers = quota_api
    acme = headers["acme"]

    def batch(size: int) -> Any:
        return api.client.post(BATCH, json={"pairs": [{"a": 1, "b": 1}] * size}, headers=acme)

    three = batch(3)
    three_more = batch(3)
    two = batch(2)
    one_more = batch(1)

    assert (three.status_code, two.status_code) == (201, 201)
    assert_problem(three_more, 429, "quota-exceeded")
    assert three_more.headers["RateLimit-Policy"] == '"queued-batch-pairs";q=5'
    assert three_more.headers["RateLimit"] == '"queued-batch-pairs";r=2;t=5'
    # Two tasks queued of three allowed, five pairs of five: the pairs refuse it.
    assert_problem(one_more, 429, "quota-exceeded")
    assert len(api.uow.store.rows) == 2


def test_creates_accepted_together_count_against_the_quota_in_their_order(
    quota_api: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, _ = quota_api
    acme = Principal("acme", frozenset({Scope.WRITE}))
    globex = Principal("globex", frozenset({Scope.WRITE}))
    requests = [
        CreateTaskRequest(a=i, b=0, principal=acme if i % 2 == 0 else globex) for i in range(10)
    ]

    outcomes = api.container.create_task().execute_all(requests)

    refused = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, QuotaExceeded)]
    assert refused == [6, 7, 8, 9]
    assert sorted(task.a for task in api.uow.store.rows.values()) == [0, 1, 2, 3, 4, 5]

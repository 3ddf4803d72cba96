"""AUTH=required (issue 15): every task route against no key, a bad key, a revoked key, a key
without the route's scope and another tenant's task answers its documented problem and changes
nothing in the store; a key never shows up in a response or a log line."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from application.use_cases import EventCursor
from domain.access import Scope
from entrypoints.settings import Settings
from tests.unit.api.conftest import TEST_SETTINGS, Api, build_api
from tests.unit.api.shapes import assert_problem

TASKS = "/api/v1/tasks"
AUTH_SETTINGS = Settings(
    **{
        **TEST_SETTINGS.model_dump(),
        "auth": "required",
        "api_key_pepper": "unit-test pepper",
        # Limits off here: their own tests count them.
        "rate_limit_creates_per_second": 0,
        "quota_queued_tasks": 0,
        "quota_batch_pairs": 0,
    }
)


@dataclass
class Keys:
    acme: str  # tasks:read, tasks:write of tenant acme
    acme_reader: str  # tasks:read only
    acme_writer: str  # tasks:write only
    globex: str  # tasks:read, tasks:write of tenant globex
    admin: str  # admin, of tenant ops
    revoked: str  # was acme's tasks:read, tasks:write

    def every(self) -> list[str]:
        return list(asdict(self).values())


def _issue(api: Api, tenant: str, *scopes: Scope) -> str:
    return api.container.issue_api_key().execute(tenant, frozenset(scopes)).key


@pytest.fixture
def api() -> Iterator[Api]:
    built = build_api(AUTH_SETTINGS)
    yield built
    built.container.unwire()


@pytest.fixture
def keys(api: Api) -> Keys:
    revoked = api.container.issue_api_key().execute("acme", frozenset({Scope.READ, Scope.WRITE}))
    assert revoked.stored.id is not None
    api.container.revoke_api_key().execute(revoked.stored.id)
    return Keys(
        acme=_issue(api, "acme", Scope.READ, Scope.WRITE),
        acme_reader=_issue(api, "acme", Scope.READ),
        acme_writer=_issue(api, "acme", Scope.WRITE),
        globex=_issue(api, "globex", Scope.READ, Scope.WRITE),
        admin=_issue(api, "ops", Scope.ADMIN),
        revoked=revoked.key,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# (method, path, body, scope it needs); task 1 is acme's.
ROUTES = [
    ("POST", TASKS, {"a": 1, "b": 2}, Scope.WRITE),
    ("POST", f"{TASKS}/batch", {"pairs": [{"a": 1, "b": 2}]}, Scope.WRITE),
    ("GET", TASKS, None, Scope.READ),
    ("GET", f"{TASKS}/1", None, Scope.READ),
    ("PUT", f"{TASKS}/1", {"priority": 1}, Scope.WRITE),
    ("POST", f"{TASKS}/1/retry", None, Scope.WRITE),
    ("POST", f"{TASKS}/1/cancel", None, Scope.WRITE),
    ("GET", f"{TASKS}/1/attempts", None, Scope.READ),
    ("GET", f"{TASKS}/1/explain", None, Scope.READ),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]
TASK_ROUTES = [route for route in ROUTES if "/1" in route[1]]


def _call(api: Api, route: tuple[Any, ...], headers: dict[str, str]) -> Any:
    method, path, body, _ = route
    return api.client.request(method, path, json=body, headers=headers)


def _store(api: Api) -> tuple[Any, ...]:
    rows = {i: asdict(task) for i, task in api.uow.store.rows.items()}
    return rows, copy.deepcopy(api.uow.store.keys), list(api.queue.published)


def _acme_task(api: Api, keys: Keys) -> None:
    response = api.client.post(
        TASKS, json={"a": 1, "b": 2, "priority": 3}, headers=bearer(keys.acme)
    )
    assert response.status_code == 201 and response.json()["id"] == 1


def _assert_unauthenticated(response: Any) -> None:
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(body) == {"type", "title", "status", "detail"}


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer tm_0123456789ab_" + "x" * 43},
    ],
    ids=["no key", "empty bearer", "basic auth", "garbage key", "unknown key"],
)
def test_a_request_without_a_valid_key_is_401_and_changes_nothing(
    api: Api, keys: Keys, route: tuple[Any, ...], headers: dict[str, str]
) -> None:
    _acme_task(api, keys)
    before = _store(api)

    _assert_unauthenticated(_call(api, route, headers))

    assert _store(api) == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_key_with_a_wrong_secret_is_401(api: Api, keys: Keys, route: tuple[Any, ...]) -> None:
    _acme_task(api, keys)
    before = _store(api)
    forged = keys.acme[:-4] + ("AAAA" if not keys.acme.endswith("AAAA") else "BBBB")

    _assert_unauthenticated(_call(api, route, bearer(forged)))

    assert _store(api) == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_revoked_key_is_401_and_changes_nothing(
    api: Api, keys: Keys, route: tuple[Any, ...]
) -> None:
    _acme_task(api, keys)
    before = _store(api)

    _assert_unauthenticated(_call(api, route, bearer(keys.revoked)))

    assert _store(api) == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_key_without_the_route_s_scope_is_403_and_changes_nothing(
    api: Api, keys: Keys, route: tuple[Any, ...]
) -> None:
    _acme_task(api, keys)
    before = _store(api)
    lacking = keys.acme_reader if route[3] is Scope.WRITE else keys.acme_writer

    response = _call(api, route, bearer(lacking))

    body = assert_problem(response, 403, "forbidden")
    assert route[3].value in body["detail"]
    assert set(body) == {"type", "title", "status", "detail"}
    assert _store(api) == before


@pytest.mark.parametrize("route", TASK_ROUTES, ids=[f"{m} {p}" for m, p, _, _ in TASK_ROUTES])
def test_another_tenant_s_task_is_404_exactly_like_a_missing_one_and_is_unchanged(
    api: Api, keys: Keys, route: tuple[Any, ...]
) -> None:
    _acme_task(api, keys)
    before = _store(api)
    method, path, body, scope = route
    missing = (method, path.replace("/1", "/2", 1), body, scope)

    theirs = _call(api, route, bearer(keys.globex))
    absent = _call(api, missing, bearer(keys.globex))

    assert_problem(theirs, 404, "task-not-found")
    assert theirs.json() == {**absent.json(), "detail": "task 1 does not exist"}
    assert dict(theirs.headers) | {"content-length": "0"} == dict(absent.headers) | {
        "content-length": "0"
    }
    assert _store(api) == before


def test_a_tenant_lists_only_its_own_tasks_and_an_admin_lists_every_tenant_s(
    api: Api, keys: Keys
) -> None:
    for key, a in [(keys.acme, 1), (keys.globex, 2), (keys.acme, 3)]:
        assert api.client.post(TASKS, json={"a": a, "b": 0}, headers=bearer(key)).status_code == 201

    def listed(key: str) -> tuple[list[int], int]:
        page = api.client.get(TASKS, headers=bearer(key)).json()
        return [item["a"] for item in page["items"]], page["total"]

    assert listed(keys.acme) == ([3, 1], 2)
    assert listed(keys.acme_reader) == ([3, 1], 2)
    assert listed(keys.globex) == ([2], 1)
    assert listed(keys.admin) == ([3, 2, 1], 3)


def test_an_admin_reads_and_moves_any_tenant_s_task(api: Api, keys: Keys) -> None:
    _acme_task(api, keys)

    assert api.client.get(f"{TASKS}/1", headers=bearer(keys.admin)).status_code == 200
    cancelled = api.client.post(f"{TASKS}/1/cancel", headers=bearer(keys.admin))

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api.uow.stored(1).tenant == "acme"  # the owner stays the owner


def test_a_task_belongs_to_the_tenant_of_the_key_that_created_it(api: Api, keys: Keys) -> None:
    api.client.post(TASKS, json={"a": 1, "b": 2}, headers=bearer(keys.globex))
    api.client.post(
        f"{TASKS}/batch", json={"pairs": [{"a": 1, "b": 2}]}, headers=bearer(keys.admin)
    )

    assert [api.uow.stored(i).tenant for i in (1, 2)] == ["globex", "ops"]


def test_idempotency_keys_are_each_tenant_s_own(api: Api, keys: Keys) -> None:
    idem = {"Idempotency-Key": '"shared-key"'}
    acme = api.client.post(TASKS, json={"a": 1, "b": 2}, headers=bearer(keys.acme) | idem)
    globex = api.client.post(TASKS, json={"a": 1, "b": 2}, headers=bearer(keys.globex) | idem)
    acme_again = api.client.post(TASKS, json={"a": 1, "b": 2}, headers=bearer(keys.acme) | idem)

    assert acme.status_code == globex.status_code == acme_again.status_code == 201
    assert (acme.json()["id"], globex.json()["id"], acme_again.json()["id"]) == (1, 2, 1)
    assert set(api.uow.store.keys) == {("acme", "shared-key"), ("globex", "shared-key")}


def test_health_and_docs_need_no_key(api: Api) -> None:
    assert api.client.get("/api/v1/health").status_code == 200
    assert api.client.get("/openapi.json").status_code == 200


def test_no_key_ever_shows_in_a_response_or_a_log_line(
    api: Api, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = keys.acme[:-4] + "AAAA"
    texts = []
    for key in [*keys.every(), forged]:
        for route in ROUTES:
            response = _call(api, route, bearer(key))
            texts.append(response.text + str(response.headers))
    for key in [*keys.every(), forged]:
        # tm_<prefix>_<secret>: the secret may itself hold "_", so split twice only.
        secret = key.split("_", 2)[2]
        assert not any(secret in text for text in texts)
        assert secret not in caplog.text
    # Nor in the store: only the prefix and a keyed hash are kept.
    for stored in api.uow.store.api_keys.values():
        assert all(key.split("_", 2)[2] not in repr(stored) for key in keys.every())


def test_with_auth_off_every_request_is_the_built_in_tenant_s_and_a_key_is_ignored() -> None:
    api = build_api()
    try:
        assert api.client.post(TASKS, json={"a": 1, "b": 2}).status_code == 201
        garbage = api.client.get(f"{TASKS}/1", headers=bearer("not-a-key"))
        assert garbage.status_code == 200
        assert api.uow.stored(1).tenant == "default"
    finally:
        api.container.unwire()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/console/overview", None),
        ("POST", f"{TASKS}/bulk", {"action": "cancel", "dry_run": False}),
    ],
)
def test_the_console_s_calls_need_the_admin_scope(
    api: Api, keys: Keys, method: str, path: str, body: Any
) -> None:
    _acme_task(api, keys)
    before = _store(api)

    _assert_unauthenticated(api.client.request(method, path, json=body))
    for key in (keys.acme, keys.acme_reader, keys.globex):
        refused = api.client.request(method, path, json=body, headers=bearer(key))
        assert_problem(refused, 403, "forbidden")
    assert _store(api) == before
    allowed = api.client.request(method, path, json=body, headers=bearer(keys.admin))
    assert allowed.status_code == 200
    assert api.client.get("/dashboard").status_code == 200  # the shell holds no data


def test_a_tenant_s_event_stream_shows_only_its_own_tasks(api: Api, keys: Keys) -> None:
    _acme_task(api, keys)
    api.client.post(TASKS, json={"a": 5, "b": 5}, headers=bearer(keys.globex))
    theirs = api.client.get(f"{TASKS}/1/events", headers=bearer(keys.globex))
    assert_problem(theirs, 404, "task-not-found")
    follow = api.container.follow_events()
    for key, tenant in ((keys.globex, "globex"), (keys.admin, None)):
        principal = api.container.authenticate().execute(key)
        cursor = follow.open(EventCursor(principal=principal), resume=True)
        seen = {event.tenant for event in follow.next(cursor)}
        assert seen == ({tenant} if tenant else {"acme", "globex"})

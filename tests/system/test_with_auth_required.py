"""The whole system on PostgreSQL and Redis with AUTH=required (issue 15): the core and
retry-safety scenarios again, every request with a key made by `python -m entrypoints.keys`;
then what only auth adds, against the running processes: 401 without or with a revoked key,
403 without the scope, another tenant's task is 404, rate limit and quota counted exactly, and
no key in any process's log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import offline_page
from tests.system.harness import RunningSystem, keys_cli, new_key, system_on_postgres_and_redis
from tests.system.idempotency_scenarios import RetrySafetyScenarios
from tests.system.scenarios import CoreScenarios, assert_problem

pytestmark = pytest.mark.system

TASKS = "/api/v1/tasks"
PEPPER = "system-test pepper"
# High enough for the scenarios' bursts of creates; the limit tests restart the API lower.
WAIT = 20_000  # ms, for the console's page to show what it is waiting for
SETTINGS = {"AUTH": "required", "API_KEY_PEPPER": PEPPER, "RATE_LIMIT_CREATES_PER_SECOND": "1000"}


class AuthSystem:
    def __init__(self, system: RunningSystem, log_dir: Path) -> None:
        self.system = system
        self.log_dir = log_dir
        self.env = system.processes["api"].env
        self.keys: list[str] = []

    def key(self, tenant: str, scopes: str = "tasks:read,tasks:write") -> str:
        key = new_key(self.env, tenant, scopes)
        self.keys.append(key)
        return key

    def request(self, method: str, path: str, key: str | None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        # Not system.http: it carries the scenarios' key.
        url = self.system.base_url + path
        return httpx.request(method, url, headers=headers, timeout=10.0, **kwargs)


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthSystem]:
    log_dir = tmp_path_factory.mktemp("logs")
    with system_on_postgres_and_redis(log_dir, **SETTINGS) as (system, _redis):
        auth = AuthSystem(system, log_dir)
        system.authorize(auth.key("scenarios"))
        yield auth


@pytest.fixture
def system(auth: AuthSystem) -> RunningSystem:
    return auth.system


class TestWithAuthRequired(CoreScenarios, RetrySafetyScenarios):
    """The same scenarios as without auth, every request with the tenant `scenarios`' key."""


def _routes(task_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", TASKS, {"a": 1, "b": 2}),
        ("POST", f"{TASKS}/batch", {"pairs": [{"a": 1, "b": 2}]}),
        ("GET", TASKS, None),
        ("GET", f"{TASKS}/{task_id}", None),
        ("PUT", f"{TASKS}/{task_id}", {"priority": 1}),
        ("POST", f"{TASKS}/{task_id}/retry", None),
        ("POST", f"{TASKS}/{task_id}/cancel", None),
    ]


def _as_admin(auth: AuthSystem, task_id: int) -> tuple[int, int, bool]:
    """What a refused request could have changed: the number of tasks of every tenant, the
    task's priority, whether it was cancelled. (It runs meanwhile: priority 3 waits 10 s.)"""
    admin = auth.key("ops", "admin")
    task = auth.request("GET", f"{TASKS}/{task_id}", admin).json()
    total = auth.request("GET", TASKS, admin, params={"limit": 1}).json()["total"]
    return total, task["priority"], task["status"] == "cancelled"


def test_without_a_valid_key_every_route_is_401_and_nothing_changes(auth: AuthSystem) -> None:
    acme = auth.key("acme")
    task = auth.request("POST", TASKS, acme, json={"a": 1, "b": 2, "priority": 3}).json()
    before = _as_admin(auth, task["id"])
    revoked = auth.key("acme")
    listed = keys_cli(auth.env, "list").stdout.splitlines()
    (line,) = [row for row in listed if revoked.split("_")[1] in row]
    assert keys_cli(auth.env, "revoke", line.split("\t")[0]).returncode == 0

    for key in (None, "not-a-key", acme[:-4] + "AAAA", revoked):
        for method, path, body in _routes(task["id"]):
            response = auth.request(method, path, key, json=body)
            assert_problem(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)

    assert _as_admin(auth, task["id"]) == before


def test_a_key_without_the_scope_is_403_and_another_tenant_s_task_is_404(
    auth: AuthSystem,
) -> None:
    acme, reader, globex = auth.key("acme"), auth.key("acme", "tasks:read"), auth.key("globex")
    task = auth.request("POST", TASKS, acme, json={"a": 1, "b": 2, "priority": 3}).json()
    before = _as_admin(auth, task["id"])

    for method, path, body in _routes(task["id"]):
        if method != "GET":
            assert_problem(auth.request(method, path, reader, json=body), 403)
        if path != TASKS and not path.endswith("/batch"):
            theirs = auth.request(method, path, globex, json=body)
            assert_problem(theirs, 404)
            assert theirs.json()["detail"] == f"task {task['id']} does not exist"

    globex_list = auth.request("GET", TASKS, globex, params={"limit": 1000}).json()
    assert task["id"] not in [item["id"] for item in globex_list["items"]]
    assert task["id"] in [item["id"] for item in auth.request("GET", TASKS, reader).json()["items"]]
    assert _as_admin(auth, task["id"]) == before


def _restart_api(auth: AuthSystem, **env: str) -> None:
    auth.system.restart("api", **env)
    auth.system.wait_healthy()


def test_the_rate_limit_and_the_quota_count_exactly(auth: AuthSystem) -> None:
    try:
        # One token per 1000 s, three at most: exactly three creates of a new tenant pass.
        _restart_api(auth, RATE_LIMIT_CREATES_PER_SECOND="0.001", RATE_LIMIT_BURST="3")
        limited = auth.key("limited")
        statuses = [
            auth.request("POST", TASKS, limited, json={"a": i, "b": 1}).status_code
            for i in range(3)
        ]
        refused = auth.request("POST", TASKS, limited, json={"a": 9, "b": 1})
        assert statuses == [201, 201, 201]
        assert_problem(refused, 429)
        assert refused.json()["type"] == "urn:taskman:problem:rate-limited"
        assert int(refused.headers["Retry-After"]) >= 999
        assert refused.headers["RateLimit-Policy"] == '"creates";q=3;w=3000'
        assert refused.headers["RateLimit"].startswith('"creates";r=0;')

        # Two queued tasks at most: priority 3 waits 10 s, so they stay queued meanwhile.
        _restart_api(auth, RATE_LIMIT_CREATES_PER_SECOND="1000", QUOTA_QUEUED_TASKS="2")
        quota = auth.key("quota")
        made = [
            auth.request("POST", TASKS, quota, json={"a": 1, "b": i, "priority": 3})
            for i in range(2)
        ]
        over = auth.request("POST", TASKS, quota, json={"a": 1, "b": 9, "priority": 3})
        assert [r.status_code for r in made] == [201, 201]
        assert_problem(over, 429)
        assert over.json()["type"] == "urn:taskman:problem:quota-exceeded"
        assert over.headers["RateLimit-Policy"] == '"queued-tasks";q=2'
        assert "Retry-After" in over.headers
        cancel = auth.request("POST", f"{TASKS}/{made[0].json()['id']}/cancel", quota)
        assert cancel.status_code == 200
        again = auth.request("POST", TASKS, quota, json={"a": 1, "b": 9, "priority": 3})
        assert again.status_code == 201
        listed = auth.request("GET", TASKS, quota).json()
        assert listed["total"] == 3
    finally:
        for name in ("RATE_LIMIT_BURST", "QUOTA_QUEUED_TASKS"):
            auth.env.pop(name, None)
        _restart_api(auth, RATE_LIMIT_CREATES_PER_SECOND="1000")


def test_the_console_takes_an_admin_key_and_refuses_none_or_a_lesser_one(
    auth: AuthSystem,
) -> None:
    admin, reader = auth.key("ops", "admin"), auth.key("viewer", "tasks:read")
    task = auth.request("POST", TASKS, auth.key("shop"), json={"a": 5, "b": 6, "priority": 3})
    overview = "/api/v1/console/overview"
    assert_problem(auth.request("GET", overview, None), 401)
    assert_problem(auth.request("GET", overview, reader), 403)
    assert_problem(auth.request("POST", f"{TASKS}/bulk", reader, json={"action": "cancel"}), 403)

    base = auth.system.base_url
    with offline_page(base) as browser:
        page = browser.page
        page.goto(f"{base}/dashboard")  # the page holds no data: served without a key
        refused = page.wait_for_selector("#error:has-text('needs an admin API key')", timeout=WAIT)
        assert refused is not None and "401" in refused.inner_text()
        for key, said in ((reader, "lacks the admin scope"), (admin, None)):
            page.fill("#api-key", key)
            page.click("#key-form button[type=submit]")
            if said is not None:
                refused = page.wait_for_selector(f"#error:has-text('{said}')", timeout=WAIT)
                assert refused is not None and "403" in refused.inner_text()
                assert page.locator(".panel").count() == 0
        page.wait_for_selector(f'tr[data-task-id="{task.json()["id"]}"]', timeout=WAIT)
        page.wait_for_selector("#live.on", timeout=WAIT)  # the event stream took the key too
        assert page.locator(".panel").count() == 3 and page.locator("#error").is_hidden()
        assert browser.blocked == []


def test_no_key_appears_in_any_log(auth: AuthSystem) -> None:
    # Runs last in this module: by now every key above went through every process.
    logs = "".join(path.read_text(errors="replace") for path in auth.log_dir.glob("*.log"))
    assert logs  # the processes did log
    assert len(auth.keys) >= 8
    for key in auth.keys:
        assert key.split("_", 2)[2] not in logs

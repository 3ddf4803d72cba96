"""The operator console in a real browser (Debian's Chromium through Playwright, no internet),
against the whole system on PostgreSQL + Redis: the scenarios of issue 16. Screenshots are
written to the test's artifacts folder (its tmp_path, named in the output)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser import offline_page
from tests.system.console_scenarios import EventScenarios
from tests.system.harness import RunningSystem, system_on_postgres_and_redis

pytestmark = pytest.mark.system

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with system_on_postgres_and_redis(
        tmp_path_factory.mktemp("logs"), EVENTS_HEARTBEAT_SECONDS="0.5"
    ) as (system, _redis):
        yield system


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("console-screenshots")
    print(f"console screenshots in {folder}")
    return folder


@pytest.fixture
def page(system: RunningSystem) -> Iterator[Page]:
    with offline_page(system.base_url) as browser:
        browser.page.goto(f"{system.base_url}/dashboard")
        browser.page.wait_for_selector(".panel", timeout=WAIT_MS)
        browser.page.wait_for_selector("#live.on", timeout=WAIT_MS)
        yield browser.page
        assert browser.blocked == [], "the console reached beyond the system"


class TestEventsOnPostgresAndRedis(EventScenarios):
    """The event scenarios, here with a heartbeat every 0.5 s."""

    def test_an_idle_stream_sends_heartbeats(self, system: RunningSystem) -> None:
        with system.http.stream("GET", "/api/v1/events", params={"status": "failed"}) as s:
            lines = s.iter_lines()
            comments = [next(lines) for _ in range(3)]
        assert [line for line in comments if line] and all(
            line.startswith(":") for line in comments if line
        )


def _search(page: Page, **fields: str) -> None:
    for name in ("id", "status", "priority", "type", "created_after", "created_before"):
        selector = f"#filter-{name.replace('_', '-')}"
        if name in ("status", "priority", "type"):
            page.select_option(selector, fields.get(name, ""))
        else:
            page.fill(selector, fields.get(name, ""))
    page.click("#filters button[type=submit]")


def _local_second(page: Page, instant: datetime) -> str:
    """The whole second of `instant` in the browser's local time, as its date-time pickers take
    it (they hold local time; the page sends the instant in UTC)."""
    return str(
        page.evaluate(
            """(ms) => { const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
            return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
                   `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }""",
            int(instant.timestamp()) * 1000,
        )
    )


def _listed(page: Page, task_id: int) -> bool:
    return page.locator(f'tr[data-task-id="{task_id}"]').count() == 1


def _row_status(page: Page, task_id: int, status: str) -> None:
    page.wait_for_selector(f'tr[data-task-id="{task_id}"] td.status-{status}', timeout=WAIT_MS)


def test_a_task_created_over_the_api_appears_and_turns_success_without_a_reload(
    system: RunningSystem, page: Page, artifacts: Path
) -> None:
    task = system.create(2, 3, priority=1)
    _row_status(page, task["id"], "success")
    page.wait_for_function(
        "document.querySelector('.panel[data-priority=\"1\"] [data-field=succeeded]')"
        ".textContent !== '0'",
        timeout=WAIT_MS,
    )
    page.screenshot(path=str(artifacts / "live.png"), full_page=True)


def test_filters_show_only_matching_tasks_with_their_exact_total(
    system: RunningSystem, page: Page
) -> None:
    for _ in range(2):
        task = system.create(1, 1, priority=3)
        assert system.http.post(f"/api/v1/tasks/{task['id']}/cancel").status_code == 200
    _search(page, status="cancelled", priority="3")
    page.wait_for_function(
        "(() => { const s = [...document.querySelectorAll('#tasks tbody td.status')];"
        " return s.length > 0 && s.every((c) => c.textContent === 'cancelled'); })()",
        timeout=WAIT_MS,
    )
    statuses = page.locator("#tasks tbody td.status").all_inner_texts()
    priorities = page.locator("#tasks tbody td.priority").all_inner_texts()
    total = system.http.get("/api/v1/tasks", params={"status": "cancelled", "priority": 3}).json()
    assert set(statuses) == {"cancelled"} and set(priorities) == {"3"}
    assert page.inner_text("#total") == f"{total['total']} matching tasks"


def test_a_failed_task_is_retried_from_its_page(
    system: RunningSystem, page: Page, artifacts: Path
) -> None:
    system.restart("worker-high", TASK_FAILURE_RATE="1")
    try:
        task = system.create(20, 22, priority=1)
        assert system.wait_for(task["id"], timeout=30)["status"] == "failed"
    finally:
        system.restart("worker-high", TASK_FAILURE_RATE="0")
    _search(page, id=str(task["id"]))
    page.wait_for_selector('#explain li[data-code="failed"]', timeout=WAIT_MS)
    assert page.locator("#attempts tbody tr").count() == 3
    page.click("#task-retry")
    page.wait_for_function(
        "document.querySelector('#task-fields [data-field=status]').textContent === 'success'",
        timeout=WAIT_MS,
    )
    assert system.task(task["id"])["result"] == 42
    assert page.locator("#attempts tbody tr").count() == 4
    workers = page.locator("#attempts tbody td.worker").all_inner_texts()
    assert len(workers) == 4 and all(w.startswith("high") and "@" in w for w in workers), workers
    page.screenshot(path=str(artifacts / "retried.png"), full_page=True)


def test_a_bulk_cancel_by_filter_after_its_dry_run(system: RunningSystem, page: Page) -> None:
    mine = [system.create(i, 1, priority=3)["id"] for i in range(4)]
    _search(page, status="queued", priority="3")
    page.click("#bulk-dry-run")
    page.wait_for_selector("#bulk-count:has-text('tasks match')", timeout=WAIT_MS)
    matched = int(page.inner_text("#bulk-count").split()[0])
    assert matched >= len(mine)
    assert all(system.task(task_id)["status"] == "queued" for task_id in mine)  # a dry run
    page.click("#bulk-apply")
    page.wait_for_selector("#bulk-result:has-text('moved')", timeout=WAIT_MS)
    moved, skipped = (int(word) for word in page.inner_text("#bulk-result").split()[::2][:2])
    assert moved + skipped == matched and moved >= len(mine)
    assert all(system.task(task_id)["status"] == "cancelled" for task_id in mine)


def test_a_search_by_creation_time_then_a_bulk_cancel_of_that_window(
    system: RunningSystem, page: Page
) -> None:
    earlier = system.create(1, 2, priority=3)
    # The pickers hold whole seconds: the later task is created in a later second.
    created = datetime.fromisoformat(earlier["created_at"])
    time.sleep(1 - created.microsecond / 1_000_000)
    later = system.create(3, 4, priority=3)
    split = _local_second(page, datetime.fromisoformat(later["created_at"]))

    _search(page, priority="3", created_after=split)
    # Waits for the search's answer itself: before it, the table may still hold the unfiltered
    # page from before `earlier` was created (the live refresh follows an event by ~0.3 s, and
    # `later` can come a few ms after `earlier`), so "earlier is not listed" proves nothing.
    page.wait_for_function(
        """([earlier, later]) => document.querySelector(`tr[data-task-id="${later}"]`) !== null
            && document.querySelector(`tr[data-task-id="${earlier}"]`) === null
            && document.getElementById("total").textContent === '1 matching tasks'""",
        arg=[earlier["id"], later["id"]],
        timeout=WAIT_MS,
    )
    _search(page, priority="3", created_before=split)
    page.wait_for_selector(f'tr[data-task-id="{earlier["id"]}"]', timeout=WAIT_MS)
    assert not _listed(page, later["id"])

    _search(page, status="queued", priority="3", created_after=split)
    page.click("#bulk-dry-run")
    page.wait_for_selector("#bulk-count:has-text('1 tasks match')", timeout=WAIT_MS)
    page.click("#bulk-apply")
    page.wait_for_selector("#bulk-result:has-text('1 moved')", timeout=WAIT_MS)
    assert system.task(later["id"])["status"] == "cancelled"
    assert system.task(earlier["id"])["status"] != "cancelled"


def test_the_explain_panel_of_a_waiting_priority_3_task(
    system: RunningSystem, page: Page, artifacts: Path
) -> None:
    task = system.create(7, 8, priority=3)
    _search(page, id=str(task["id"]))
    reason = page.wait_for_selector('#explain li[data-code="due_in"]', timeout=WAIT_MS)
    assert reason is not None and "due in" in reason.inner_text()
    assert "priority delay" in reason.inner_text()
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

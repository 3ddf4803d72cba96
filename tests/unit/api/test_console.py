"""The operator console's calls on the API over fakes: a task's attempts, its explanation, its
event stream, the panels, bulk moves, and the page itself."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from dependency_injector import providers

from domain.errors import TaskFailure
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem

TASKS = "/api/v1/tasks"


def _events(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(id, data) of each event of an SSE body."""
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            assert fields["event"] == "task"
            found.append((int(fields["id"]), json.loads(fields["data"])))
    return found


def test_attempts_record_each_execution_with_its_lateness_outcome_and_worker(api: Api) -> None:
    api.container.worker_name.override(providers.Object("high@box:7"))
    task = api.create(priority=1)
    api.arithmetic.failures = [TaskFailure("flaky")]
    api.clock.advance(0.25)
    api.run_published()  # the first attempt fails: queued again after a backoff
    api.clock.advance(60)
    api.container.dispatch_due().execute()
    api.run_published()

    response = api.client.get(f"{TASKS}/{task['id']}/attempts")

    assert response.status_code == 200
    body = response.json()
    assert body["task_id"] == task["id"]
    first, second = body["items"]
    assert (first["attempt"], first["outcome"], first["error"]) == (1, "retried", "flaky")
    assert first["lateness_ms"] == 250
    assert (second["attempt"], second["outcome"], second["error"]) == (2, "success", None)
    assert second["dispatch_no"] == 2
    assert first["worker"] == second["worker"] == "high@box:7"


def test_explain_of_a_running_task_names_its_worker_start_and_lease(api: Api) -> None:
    task = api.create(priority=1)
    with api.uow:
        api.uow.tasks.claim(task["id"], 1, api.clock.now(), timedelta(seconds=30), worker="w@h:1")
        api.uow.commit()

    (reason,) = api.client.get(f"{TASKS}/{task['id']}/explain").json()["reasons"]

    assert (reason["code"], reason["worker"]) == ("running", "w@h:1")
    assert reason["since"] == task["created_at"]
    assert reason["lease_until"] == (api.clock.now() + timedelta(seconds=30)).isoformat()
    assert "on worker w@h:1 since" in reason["detail"]
    (attempt,) = api.client.get(f"{TASKS}/{task['id']}/attempts").json()["items"]
    assert (attempt["worker"], attempt["outcome"]) == ("w@h:1", None)


def test_attempts_of_a_missing_task_are_404(api: Api) -> None:
    assert_problem(api.client.get(f"{TASKS}/7/attempts"), 404, "task-not-found")
    assert_problem(api.client.get(f"{TASKS}/7/explain"), 404, "task-not-found")


def test_explain_gives_the_delay_then_the_publication_then_the_running_attempt(api: Api) -> None:
    task = api.create(priority=3)
    api.clock.advance(4)

    waiting = api.client.get(f"{TASKS}/{task['id']}/explain").json()
    assert waiting["status"] == "queued" and waiting["priority"] == 3
    (reason,) = waiting["reasons"]
    assert reason["code"] == "due_in" and reason["cause"] == "priority_delay"
    assert reason["due_in_ms"] == 6000

    api.clock.advance(7)
    codes = [r["code"] for r in api.client.get(f"{TASKS}/{task['id']}/explain").json()["reasons"]]
    assert codes == ["awaiting_publication"]

    api.container.dispatch_due().execute()
    api.queue.consumer_counts[3] = 0  # type: ignore[index]
    published = api.client.get(f"{TASKS}/{task['id']}/explain").json()["reasons"]
    assert [r["code"] for r in published] == ["published", "no_consumer"]
    assert published[0]["messages_ahead"] == 1 and published[1]["queue"] == "low"


def test_explain_of_a_failed_task_names_its_error_and_attempts(api: Api) -> None:
    task = api.create(priority=1)
    for _ in range(3):
        api.arithmetic.failures = [TaskFailure("boom")]
        api.run_published()
        api.clock.advance(600)
        api.container.dispatch_due().execute()
    (reason,) = api.client.get(f"{TASKS}/{task['id']}/explain").json()["reasons"]
    assert reason["code"] == "failed"
    assert (reason["error"], reason["attempts"], reason["max_attempts"]) == ("boom", 3, 3)


def test_a_task_s_event_stream_replays_its_moves_and_ends_when_it_finishes(api: Api) -> None:
    task = api.create(priority=1)
    api.run_published()

    response = api.client.get(f"{TASKS}/{task['id']}/events")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [data["status"] for _, data in events] == ["queued", "running", "success"]
    assert [event_id for event_id, _ in events] == [data["event_id"] for _, data in events]
    resumed = api.client.get(
        f"{TASKS}/{task['id']}/events", headers={"Last-Event-ID": str(events[0][0])}
    )
    assert [data["status"] for _, data in _events(resumed.text)] == ["running", "success"]


def test_a_stream_of_a_missing_task_or_with_a_bad_last_event_id_is_a_problem(api: Api) -> None:
    assert_problem(api.client.get(f"{TASKS}/9/events"), 404, "task-not-found")
    task = api.create()
    bad = api.client.get(f"{TASKS}/{task['id']}/events", headers={"Last-Event-ID": "x"})
    assert_problem(bad, 422, "validation-error")


def test_the_panels_split_queued_tasks_and_measure_lateness(api: Api) -> None:
    api.create(priority=1)
    api.create(priority=3)
    api.create(priority=3)
    api.clock.advance(0.5)
    api.run_published()

    body = api.client.get("/api/v1/console/overview").json()

    high, medium, low = body["panels"]
    assert (high["succeeded"], high["succeeded_per_minute"]) == (1, [0, 0, 0, 0, 1])
    assert (high["lateness_p50_ms"], high["lateness_p99_ms"]) == (500, 500)
    assert (low["not_yet_due"], low["due_waiting"], low["delay_ms"]) == (2, 0, 10000)
    assert medium["lateness_p50_ms"] is None


def test_a_bulk_cancel_counts_first_then_moves_each_match(api: Api) -> None:
    for priority in (2, 2, 3):
        api.create(priority=priority)
    body = {"action": "cancel", "filter": {"priority": 2}}

    dry = api.client.post(f"{TASKS}/bulk", json=body)
    assert dry.json() == {"matched": 2, "dry_run": True, "moved": 0, "skipped": 0, "more": False}
    assert [t.status for t in api.uow.store.rows.values()] == ["queued"] * 3

    done = api.client.post(f"{TASKS}/bulk", json={**body, "dry_run": False}).json()
    assert (done["moved"], done["skipped"]) == (2, 0)
    assert [t.status for t in api.uow.store.rows.values()] == ["cancelled", "cancelled", "queued"]
    again = api.client.post(f"{TASKS}/bulk", json={"action": "cancel", "dry_run": False}).json()
    assert (again["matched"], again["moved"], again["skipped"]) == (3, 1, 2)


def test_a_bulk_priority_change_needs_its_priority_and_only_it(api: Api) -> None:
    api.create(priority=3)
    missing = api.client.post(f"{TASKS}/bulk", json={"action": "change_priority"})
    extra = api.client.post(f"{TASKS}/bulk", json={"action": "cancel", "priority": 1})
    assert_problem(missing, 422, "validation-error")
    assert_problem(extra, 422, "validation-error")
    done = api.client.post(
        f"{TASKS}/bulk", json={"action": "change_priority", "priority": 1, "dry_run": False}
    )
    assert done.json()["moved"] == 1
    assert [t.priority for t in api.uow.store.rows.values()] == [1]


def test_the_page_and_its_assets_are_served_and_need_nothing_from_elsewhere(api: Api) -> None:
    page = api.client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text
    for name, media_type in (("console.js", "text/javascript"), ("console.css", "text/css")):
        asset = api.client.get(f"/dashboard/assets/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media_type)
        assert "https://" not in asset.text
    assert api.client.get("/dashboard/assets/other.js").status_code == 404


def test_a_bulk_move_by_creation_time_counts_and_moves_only_the_window(api: Api) -> None:
    for _ in range(3):  # at 12:00:00, 12:01:00 and 12:02:00
        api.create(priority=3)
        api.clock.advance(60)
    window = {"created_after": "2026-01-01T12:01:00Z", "created_before": "2026-01-01T12:02:00Z"}
    body = {"action": "cancel", "filter": window}

    dry = api.client.post(f"{TASKS}/bulk", json=body).json()
    done = api.client.post(f"{TASKS}/bulk", json={**body, "dry_run": False}).json()

    assert (dry["matched"], done["moved"], done["skipped"]) == (1, 1, 0)
    assert [t.status for t in api.uow.store.rows.values()] == ["queued", "cancelled", "queued"]
    bad = api.client.post(f"{TASKS}/bulk", json={**body, "filter": {"created_after": 1}})
    assert_problem(bad, 422, "validation-error")

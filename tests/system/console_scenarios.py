"""The live events over HTTP, on a running system (PostgreSQL + Redis, or `make run`'s embedded
defaults): a client waits for its task through its event stream, resumes with Last-Event-ID,
and follows every task's events."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from tests.system.harness import RunningSystem


def read_events(lines: Any, until: Any) -> list[tuple[int, dict[str, Any]]]:
    """(id, data) of each event of an SSE line stream, until `until(data)` holds (or it ends)."""
    found: list[tuple[int, dict[str, Any]]] = []
    event_id = None
    for line in lines:
        if line.startswith("id:"):
            event_id = int(line.split(":", 1)[1])
        elif line.startswith("data:"):
            data = json.loads(line.split(":", 1)[1])
            assert event_id is not None and data["event_id"] == event_id
            found.append((event_id, data))
            if until(data):
                break
    return found


class EventScenarios:
    def test_a_client_waits_for_its_task_through_its_event_stream(
        self, system: RunningSystem
    ) -> None:
        task = system.create(20, 22, priority=1)
        path = f"/api/v1/tasks/{task['id']}/events"
        with system.http.stream("GET", path, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response.iter_lines(), lambda data: False)  # it ends by itself
        statuses = [data["status"] for _, data in events]
        # queued, running, success; on a loaded machine an attempt may also be given back
        # (released) or its lease lost, and the task runs again: queued and running once more.
        assert statuses[0] == "queued" and statuses[-1] == "success", statuses
        assert statuses[1:-1] == ["running", "queued"] * ((len(statuses) - 3) // 2) + ["running"], (
            statuses
        )
        assert [event_id for event_id, _ in events] == sorted(event_id for event_id, _ in events)
        assert system.task(task["id"])["result"] == 42

        resumed = system.http.get(
            path, headers={"Last-Event-ID": str(events[0][0])}, timeout=30
        ).text
        assert [data["status"] for _, data in read_events(resumed.splitlines(), bool)][:1] == [
            "running"
        ]

    def test_every_task_s_events_are_followed_from_the_next_one(
        self, system: RunningSystem
    ) -> None:
        # The stream holds one pooled connection; the creates take another.
        with system.http.stream("GET", "/api/v1/events", params={"priority": 1}) as stream:
            assert stream.status_code == 200
            task = system.create(1, 2, priority=1)
            low = system.create(1, 2, priority=3)  # filtered out
            events = read_events(
                stream.iter_lines(),
                lambda data: data["task_id"] == task["id"] and data["status"] == "success",
            )
        mine = [data["status"] for _, data in events if data["task_id"] == task["id"]]
        assert mine == ["queued", "running", "success"]
        assert all(data["priority"] == 1 for _, data in events)
        assert low["id"] not in {data["task_id"] for _, data in events}

    def test_streams_with_other_filters_and_a_resumed_one_each_get_exactly_their_events(
        self, system: RunningSystem
    ) -> None:
        # Open together, they share the API process's reader of the log (API_WORKERS=1 here).
        with (
            system.http.stream("GET", "/api/v1/events", timeout=30) as every,
            system.http.stream("GET", "/api/v1/events", params={"status": "success"}) as done,
            system.http.stream("GET", "/api/v1/events", params={"priority": 2}) as medium,
        ):
            tasks = [system.create(n, 1, priority=1) for n in range(3)]
            later = system.create(9, 9, priority=2)  # due in 5 s: only its creation is awaited
            last = tasks[-1]["id"]
            events = read_events(
                every.iter_lines(),
                lambda data: data["task_id"] == last and data["status"] == "success",
            )
            mine = {task["id"] for task in tasks}
            assert [d["status"] for _, d in events if d["task_id"] == last] == [
                "queued",
                "running",
                "success",
            ]
            successes = read_events(done.iter_lines(), lambda data: data["task_id"] == last)
            assert all(data["status"] == "success" for _, data in successes)
            assert mine <= {data["task_id"] for _, data in successes}
            (created,) = read_events(medium.iter_lines(), lambda data: True)
            assert (created[1]["task_id"], created[1]["status"]) == (later["id"], "queued")

            # Resuming from before the first of them (behind the shared reader, which is past
            # them): its own reads first, then the shared reader's, with nothing lost or repeated.
            first = next(event_id for event_id, data in events if data["task_id"] in mine)
            ids = [event_id for event_id, _ in events if event_id >= first]
            with system.http.stream(
                "GET", "/api/v1/events", headers={"Last-Event-ID": str(first - 1)}, timeout=30
            ) as resumed:
                lines = resumed.iter_lines()
                again = read_events(lines, lambda data: data["event_id"] >= ids[-1])
                assert [event_id for event_id, _ in again] == ids
                system.create(5, 5, priority=1)  # and it follows what comes next
                ((after, _),) = read_events(lines, lambda data: True)
                assert after > ids[-1]

    def test_attempts_and_explain_answer_on_the_running_system(self, system: RunningSystem) -> None:
        done = system.create(3, 4, priority=1)
        system.wait_for(done["id"])
        attempts = system.http.get(f"/api/v1/tasks/{done['id']}/attempts").json()["items"]
        # One attempt; on a loaded machine one given back (released) before it may precede it.
        attempt = attempts[-1]
        assert attempt["outcome"] == "success" and attempt["lateness_ms"] >= 0
        # The high queue's worker on this host, and the pool process that ran it.
        worker = rf"high(-\d+)?@{re.escape(socket.gethostname())}:\d+"
        assert all(re.fullmatch(worker, a["worker"]) for a in attempts), attempts
        waiting = system.create(3, 4, priority=3)
        (reason,) = system.http.get(f"/api/v1/tasks/{waiting['id']}/explain").json()["reasons"]
        assert reason["code"] == "due_in" and 0 < reason["due_in_ms"] <= 10_000

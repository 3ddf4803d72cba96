"""Retention and keyset pages on the whole system (PostgreSQL, Redis, every process): succeeded
tasks vanish once RETENTION_SUCCESS_SECONDS has passed, cancelled ones (0: kept forever) stay,
the counts follow, and a walk along the `Link: rel="next"` headers visits every task once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from adapters.sql import create_engine_for
from tests.processes import wait_until
from tests.system.harness import RunningSystem, system_on_postgres_and_redis

pytestmark = pytest.mark.system

NEXT_LINK = re.compile(r'^<([^>]+)>; rel="next"$')


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with system_on_postgres_and_redis(
        tmp_path_factory.mktemp("logs"),
        RETENTION_SUCCESS_SECONDS="1",
        RETENTION_FAILED_SECONDS="0",
        RETENTION_CANCELLED_SECONDS="0",
    ) as (system, _redis):
        yield system


def test_retention_prunes_succeeded_tasks_and_a_cursor_walk_sees_the_rest(
    system: RunningSystem,
) -> None:
    succeeded = [system.create(i, 1, priority=1)["id"] for i in range(5)]
    cancelled = []
    for i in range(7):
        task = system.create(i, 2, priority=3)
        assert system.http.post(f"/api/v1/tasks/{task['id']}/cancel").status_code == 200
        cancelled.append(task["id"])

    def all_pruned() -> bool:
        # The success count alone reads 0 before the tasks have even run; each task must be
        # gone (404), which it only is after it succeeded and then aged past retention.
        return all(
            system.http.get(f"/api/v1/tasks/{task_id}").status_code == 404 for task_id in succeeded
        )

    wait_until(all_pruned, 30, what="retention to prune the succeeded tasks")
    body = system.http.get("/api/v1/tasks", params={"status": "success"}).json()
    assert body["total"] == 0

    walked: list[int] = []
    url: str | None = "/api/v1/tasks?limit=3"
    while url is not None:
        response = system.http.get(url)
        body = response.json()
        assert body["total"] == 7
        walked += [task["id"] for task in body["items"]]
        link = response.headers.get("link")
        url = NEXT_LINK.match(link).group(1) if link else None  # type: ignore[union-attr]
        assert (url is None) == (body["next"] is None)
    assert walked == sorted(cancelled, reverse=True)

    engine = create_engine_for(system.processes["dispatcher"].env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            real = connection.execute(
                text("SELECT status, count(*) FROM tasks GROUP BY status")
            ).all()
            counted = connection.execute(
                text("SELECT status, sum(n) FROM task_counts GROUP BY status HAVING sum(n) <> 0")
            ).all()
    finally:
        engine.dispose()
    assert dict(counted) == dict(real) == {"cancelled": 7}
    log = system.processes["dispatcher"].log_text()
    assert re.search(r"retention removed \d+ finished tasks \(success \d+\)", log), log

"""The walk through README.md and docs/ that a newcomer follows, on a fresh system of its own (so
the task ids in the commands are those its database hands out), each response compared with the
one the page shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.processes import wait_until
from tests.system import examples
from tests.system.examples import Example
from tests.system.harness import RunningSystem, system_on_postgres_and_redis
from tests.system.scenarios import curl

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with system_on_postgres_and_redis(tmp_path_factory.mktemp("logs")) as (system, _redis):
        yield system


def run(system: RunningSystem, example: Example, status: int) -> Any:
    """Runs the example through curl, checks its status and, if the page shows its response,
    that the response agrees with it."""
    code, body = curl(system, example.command)
    assert code == status, body
    if example.shows_response:
        shown = example.shown_response()
        try:
            examples.assert_agrees(shown, body)
        except AssertionError as disagreement:
            raise AssertionError(
                f"{example.command}\nanswered {body}\n{example.page} shows {shown}"
            ) from disagreement
    return body


def test_every_documented_example_succeeds_and_answers_what_its_page_shows(
    system: RunningSystem,
) -> None:
    # /health counts the consumers of each queue, and a worker counts once it is consuming.
    wait_until(lambda: all(system.http.get("/api/v1/health").json()["workers"].values()), 30)
    assert run(system, examples.HEALTH, 200)["status"] == "ok"

    assert run(system, examples.CREATE, 201)["id"] == 1
    system.wait_for(1)
    assert run(system, examples.GET, 200)["result"] == 30

    assert run(system, examples.CREATE_LOW, 201)["id"] == 2
    assert run(system, examples.CHANGE_PRIORITY, 200)["priority"] == 1
    assert system.wait_for(2, timeout=5)["result"] == 5  # at once, not 10 s after its creation

    assert run(system, examples.CREATE_TO_CANCEL, 201)["id"] == 3
    assert run(system, examples.CANCEL, 200)["status"] == "cancelled"

    system.restart("worker-high", TASK_FAILURE_RATE="1")
    try:
        assert run(system, examples.CREATE_TO_FAIL, 201)["id"] == 4
        assert system.wait_for(4)["status"] == "failed"
    finally:
        system.restart("worker-high", TASK_FAILURE_RATE="0")
    assert run(system, examples.RETRY, 200)["status"] == "queued"
    assert system.wait_for(4)["result"] == 42

    assert run(system, examples.CREATE_BATCH, 201)["id"] == 5
    system.wait_for(5)
    assert [task["id"] for task in run(system, examples.LIST, 200)["items"]] == [5]
    assert system.task(3)["status"] == "cancelled"

"""A bounded wait that ran out (a lock, a statement, the pool, a task's turn) is a 503 problem
with Retry-After, never a 500 and never an endless wait."""

import asyncio
import threading

import httpx
import pytest
from dependency_injector import providers
from fastapi.testclient import TestClient

from application.ports import StoreBusy
from entrypoints.api.task_turns import TaskBusy, TaskTurns
from tests.unit.api.conftest import Api
from tests.unit.api.shapes import assert_problem


class _Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def execute(self, *_: object) -> None:
        raise self.error


# The SQL adapter's translation of each bounded wait into StoreBusy is tested against the real
# servers (tests/integration/test_sql_store_errors.py).
def test_a_wait_that_ran_out_in_the_store_is_503_with_retry_after(api: Api) -> None:
    error = StoreBusy("a lock or statement wait ran out: UPDATE tasks SET ... lock timeout")
    api.container.change_priority.override(providers.Object(_Raising(error)))
    client = TestClient(api.app, raise_server_exceptions=False)

    response = client.put("/api/v1/tasks/1", json={"priority": 1})

    body = assert_problem(response, 503, "store-busy")
    assert response.headers["retry-after"] == "1"
    assert "did not answer in time" in body["detail"]
    assert "tasks" not in body["detail"]  # nothing of the statement leaks


class _Blocking:
    """A move that holds its thread until released, as one waiting on a locked row does."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def execute(self, *_: object) -> None:
        self.calls += 1
        self.entered.set()
        self.release.wait(10)
        raise TaskBusy(0, 0)  # any answer will do once released


def test_moves_of_one_task_wait_their_turn_off_the_threadpool_then_503(api: Api) -> None:
    blocking = _Blocking()
    api.container.cancel_task.override(providers.Object(blocking))
    api.app.state.task_turns = TaskTurns(wait_seconds=0.2)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            first = asyncio.create_task(client.post("/api/v1/tasks/7/cancel"))
            await asyncio.to_thread(blocking.entered.wait, 5)
            # These never reach the use case: the first holds task 7's turn.
            others = await asyncio.gather(
                *(client.post("/api/v1/tasks/7/cancel") for _ in range(20))
            )
            other_task = await client.get("/api/v1/tasks/8")
            blocking.release.set()
            return [(await first).status_code, other_task.status_code] + [
                r.status_code for r in others
            ]

    statuses = asyncio.run(scenario())

    assert blocking.calls == 1
    assert statuses[1] == 404  # another task's read was answered meanwhile
    assert statuses[2:] == [503] * 20


def test_a_turn_is_free_again_after_its_holder_leaves() -> None:
    turns = TaskTurns(wait_seconds=0.1)

    async def scenario() -> None:
        async with turns.of(1):
            with pytest.raises(TaskBusy, match="task 1 is being changed"):
                async with turns.of(1):
                    pass
            async with turns.of(2):  # another task is independent
                pass
        async with turns.of(1):
            pass
        assert turns._per_loop[asyncio.get_running_loop()] == {}

    asyncio.run(scenario())

"""The API built by its real factory, on a container whose adapters are the core's fakes:
no server, no database, no broker."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dependency_injector import providers
from fastapi import FastAPI
from fastapi.testclient import TestClient

from application.use_cases import ExecuteTaskRequest
from entrypoints.api.app import create_app
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.fakes import FakeClock, FakeUnitOfWork, RecordingQueue, ScriptedArithmetic

MAX_BATCH_PAIRS = 5
TEST_SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    max_batch_pairs=MAX_BATCH_PAIRS,
    delay_high_seconds=0,
    delay_medium_seconds=5,
    delay_low_seconds=10,
    max_attempts=3,
)


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    container: Container
    uow: FakeUnitOfWork
    queue: RecordingQueue
    clock: FakeClock
    arithmetic: ScriptedArithmetic

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/tasks", json={"a": 1, "b": 2, **body})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def run_published(self) -> None:
        """Workers take every published message and run it through the real ExecuteTask."""
        execute = self.container.execute_task()
        for dispatch in self.queue.take():
            execute.execute(ExecuteTaskRequest(dispatch.task_id, dispatch.dispatch_no))


def build_api(settings: Settings = TEST_SETTINGS) -> Api:
    container = Container()
    uow, queue, clock = FakeUnitOfWork(), RecordingQueue(), FakeClock()
    arithmetic = ScriptedArithmetic()
    container.settings.override(providers.Object(settings))
    container.uow.override(providers.Object(uow))
    container.read_uow.override(providers.Object(uow))
    container.queue.override(providers.Object(queue))
    container.clock.override(providers.Object(clock))
    container.arithmetic.override(providers.Object(arithmetic))
    app = create_app(container)
    return Api(TestClient(app), app, container, uow, queue, clock, arithmetic)


@pytest.fixture
def api() -> Iterator[Api]:
    built = build_api()
    yield built
    built.container.unwire()

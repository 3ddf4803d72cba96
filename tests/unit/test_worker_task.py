"""The worker's Celery task checks its arguments before anything else: on a transport that does
not screen messages, a bad one is dropped and no attempt starts."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from adapters.broker import EXECUTE_TASK, create_celery_app
from application.use_cases import CreateTaskRequest
from domain.priority import Priority
from domain.task import TaskStatus
from entrypoints.container import Container
from entrypoints.worker import register_tasks
from tests.unit.conftest import Core


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("1", 1), {}), ((1.0, 1), {}), ((True, 1), {}), ((2**64, 1), {}), ((1,), {}), ((), {"a": 1})],
    ids=["string", "float", "bool", "huge", "one argument", "keywords"],
)
def test_bad_arguments_start_no_attempt(
    core: Core, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.HIGH))
    assert task.id == 1 and task.dispatch_no == 1
    container = Container()
    container.execute_task.override(providers.Object(core.execute_task))
    app = create_celery_app("memory://", visibility_timeout_seconds=60)
    register_tasks(app, container, Priority.HIGH)

    app.tasks[EXECUTE_TASK](*args, **kwargs)
    assert core.get_task.execute(1).status is TaskStatus.QUEUED
    app.tasks[EXECUTE_TASK](1, 1)
    assert core.get_task.execute(1).status is TaskStatus.SUCCESS

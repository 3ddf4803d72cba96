"""Real workers and a real dispatcher on Redis and PostgreSQL, with the production start delays:
each priority runs on its own pool after its own delay, a re-prioritised task runs at once and
once, and a duplicate message runs nothing twice.

The scenarios share one running system and overlap in time to keep the wall time low: the
delay scenario's tasks are created once, then run while the re-prioritisation scenario waits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from adapters.broker import CeleryTaskQueue
from application.ports import Dispatch
from application.use_cases import ChangePriorityRequest
from domain.priority import Priority
from domain.task import Task, TaskStatus
from tests.integration.celery_stack import CeleryStack, celery_stack, dropped, executions
from tests.processes import ManagedProcess, wait_until

pytestmark = pytest.mark.integration

PER_PRIORITY = 3
START_WINDOWS = {  # seconds after creation, from the issue
    Priority.HIGH: (0.0, 1.0),
    Priority.MEDIUM: (5.0, 6.0),
    Priority.LOW: (10.0, 11.0),
}


@dataclass
class System:
    stack: CeleryStack
    workers: dict[Priority, ManagedProcess]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # The production delays: the scenarios measure them.
    with celery_stack(
        tmp_path_factory.mktemp("celery-timing"),
        DELAY_HIGH_SECONDS="0",
        DELAY_MEDIUM_SECONDS="5",
        DELAY_LOW_SECONDS="10",
    ) as stack:
        stack.dispatcher()
        workers = dict(zip(Priority, stack.workers(*(p.queue_name for p in Priority)), strict=True))
        yield System(stack, workers)


@pytest.fixture(scope="module")
def delayed_tasks(system: System) -> dict[Priority, list[Task]]:
    """Created as soon as the first scenario needing them starts; they run in the background."""
    return {
        p: [system.stack.create(p, a=int(p), b=i) for i in range(PER_PRIORITY)] for p in Priority
    }


def test_a_queued_low_task_moved_to_high_runs_at_once_and_exactly_once(
    system: System, delayed_tasks: dict[Priority, list[Task]]
) -> None:
    stack = system.stack
    task = stack.create(Priority.LOW, a=40, b=2)
    assert task.id is not None
    time.sleep(1.0)  # queued, waiting for its 10 s delay
    assert stack.task(task.id).status is TaskStatus.QUEUED

    changed_at = stack.container.clock().now()
    stack.container.change_priority().execute(
        ChangePriorityRequest(task_id=task.id, priority=Priority.HIGH)
    )
    (done,) = stack.wait_finished([task.id], timeout=5)

    assert done.status is TaskStatus.SUCCESS and done.result == 42
    assert done.finished_at is not None
    assert done.finished_at - changed_at < timedelta(seconds=1)
    assert done.attempts == 1

    # Past the original 10 s schedule and beyond: nothing runs it again.
    time.sleep(15.0)
    later = stack.task(task.id)
    assert (later.status, later.started_at, later.finished_at, later.attempts) == (
        done.status,
        done.started_at,
        done.finished_at,
        done.attempts,
    )
    assert len(executions(system.workers[Priority.HIGH], task.id)) == 1
    assert not executions(system.workers[Priority.LOW], task.id)


def test_each_priority_starts_after_its_delay(
    system: System, delayed_tasks: dict[Priority, list[Task]]
) -> None:
    ids = [t.id for tasks in delayed_tasks.values() for t in tasks if t.id is not None]
    system.stack.wait_finished(ids, timeout=20)

    for priority, tasks in delayed_tasks.items():
        low, high = START_WINDOWS[priority]
        for created in tasks:
            assert created.id is not None
            task = system.stack.task(created.id)
            assert task.status is TaskStatus.SUCCESS and task.attempts == 1
            assert task.started_at is not None
            waited = (task.started_at - task.created_at).total_seconds()
            assert low <= waited <= high, f"priority {priority} started after {waited:.3f} s"


def test_each_task_runs_only_on_its_priority_pool(
    system: System, delayed_tasks: dict[Priority, list[Task]]
) -> None:
    ids = [t.id for tasks in delayed_tasks.values() for t in tasks if t.id is not None]
    system.stack.wait_finished(ids, timeout=20)

    for priority, tasks in delayed_tasks.items():
        for task in tasks:
            assert task.id is not None
            ran_on = [p for p, worker in system.workers.items() if executions(worker, task.id)]
            assert ran_on == [priority]


def test_the_same_message_delivered_twice_runs_once(system: System) -> None:
    stack = system.stack
    task = stack.create(Priority.MEDIUM, a=2, b=3)  # not due for 5 s: published only by us
    assert task.id is not None
    duplicate = Dispatch(task.id, task.dispatch_no, Priority.HIGH)
    queue = CeleryTaskQueue(stack.container.celery_app())
    queue.publish([duplicate, duplicate])

    high = system.workers[Priority.HIGH]
    wait_until(
        lambda: dropped(high, task.id, task.dispatch_no),
        timeout=5,
        what="the second delivery dropped",
    )
    done = stack.task(task.id)
    assert done.status is TaskStatus.SUCCESS and done.result == 5
    assert done.attempts == 1
    assert len(executions(high, task.id)) == 1

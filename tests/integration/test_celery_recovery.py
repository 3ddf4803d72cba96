"""Recovery with real workers and a real dispatcher: a wiped broker and a killed worker lose no
task and run none twice. Each scenario has a store and a broker of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.broker import CeleryTaskQueue
from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import CeleryStack, celery_stack
from tests.processes import wait_until

pytestmark = pytest.mark.integration


LOST_AFTER_SECONDS = 1.0
LEASE_SECONDS = 3.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CeleryStack]:
    with celery_stack(
        tmp_path,
        LOST_MESSAGE_AFTER_SECONDS=str(LOST_AFTER_SECONDS),
        LEASE_SECONDS=str(LEASE_SECONDS),
    ) as stack:
        yield stack


def test_a_wiped_broker_loses_no_task_and_runs_none_twice(stack: CeleryStack) -> None:
    stack.dispatcher()
    tasks = [stack.create(Priority.HIGH, a=i, b=i) for i in range(100)]  # published at once
    ids = [task.id for task in tasks if task.id is not None]
    queue = CeleryTaskQueue(stack.container.celery_app())
    assert queue.pending(Priority.HIGH) == 100

    # No worker yet: the messages wait, and a waiting message is never taken for a lost one
    # (the dispatcher runs a round every 50 ms meanwhile).
    time.sleep(2 * LOST_AFTER_SECONDS)
    assert {task.dispatch_no for task in stack.tasks(ids)} == {1}

    stack.redis().flushdb()
    assert queue.pending(Priority.HIGH) == 0
    stack.worker("high")

    done = stack.wait_finished(ids, timeout=30)
    assert all(task.status is TaskStatus.SUCCESS for task in done)
    assert [task.result for task in done] == [2 * i for i in range(100)]
    assert all(task.attempts == 1 for task in done), "a task ran twice"
    # Republished at least once; a busy worker may leave its queue empty for a moment while a
    # message is in its hands, and the sweep then republishes that one too (its old message is
    # then stale and dropped, so this costs a message, never an attempt).
    assert all(task.dispatch_no >= 2 for task in done), "every lost message was republished"


def test_a_task_held_by_a_killed_worker_runs_again_on_a_restarted_worker(
    stack: CeleryStack,
) -> None:
    stack.dispatcher()
    # Each attempt of this worker takes a minute: it is still holding the task when killed.
    slow = stack.worker("high", TASK_RUN_SECONDS="60")
    task_id = stack.create(Priority.HIGH, a=20, b=22).id
    assert task_id is not None
    wait_until(
        lambda: stack.task(task_id).status is TaskStatus.RUNNING,
        timeout=5,
        what="the task running on the slow worker",
    )

    slow.kill()  # kill -9 of the worker and its pool: no cleanup, no acknowledgement
    stack.worker("high")  # a new one

    (done,) = stack.wait_finished([task_id], timeout=20)
    assert done.status is TaskStatus.SUCCESS and done.result == 42
    assert done.attempts == 2, "the lost attempt is counted"

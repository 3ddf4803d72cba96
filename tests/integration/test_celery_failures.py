"""Automatic retries with real workers: under injected faults every task ends, each failed one
spent its whole budget, and a manual retry without faults brings each to success."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import CeleryStack, celery_stack

pytestmark = pytest.mark.integration

TASKS = 300
MAX_ATTEMPTS = 3


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CeleryStack]:
    with celery_stack(tmp_path, MAX_ATTEMPTS=str(MAX_ATTEMPTS)) as stack:
        yield stack


def test_under_injected_faults_every_task_ends_and_a_manual_retry_finishes_the_failed(
    stack: CeleryStack,
) -> None:
    stack.dispatcher()  # publishes the automatic retries when their backoff has passed
    faulty = stack.worker("high", TASK_FAILURE_RATE="0.5")
    ids = [stack.create(Priority.HIGH, a=i, b=1).id for i in range(TASKS)]
    task_ids = [task_id for task_id in ids if task_id is not None]

    ended = stack.wait_finished(task_ids, timeout=90)
    assert {task.status for task in ended} <= {TaskStatus.SUCCESS, TaskStatus.FAILED}
    failed = [task for task in ended if task.status is TaskStatus.FAILED]
    succeeded = [task for task in ended if task.status is TaskStatus.SUCCESS]
    # With a 1/2 failure rate, 1/8 of the tasks fail three times: 0 or 300 means no injection.
    assert 0 < len(failed) < TASKS
    for task in failed:
        assert task.attempts == MAX_ATTEMPTS
        assert task.error_message and "injected fault" in task.error_message
    for task in succeeded:
        assert 1 <= task.attempts <= MAX_ATTEMPTS
        assert task.result == task.a + 1 and task.error_message is None  # type: ignore[operator]
    assert any(task.attempts > 1 for task in succeeded), "no automatic retry ever succeeded"

    faulty.stop()
    stack.worker("high", TASK_FAILURE_RATE="0")
    for task in failed:
        assert task.id is not None
        stack.container.retry_task().execute(task.id)

    retried = stack.wait_finished([task.id for task in failed if task.id is not None], timeout=30)
    assert all(task.status is TaskStatus.SUCCESS for task in retried)
    assert all(task.attempts == 1 for task in retried), "the budget starts afresh on a retry"

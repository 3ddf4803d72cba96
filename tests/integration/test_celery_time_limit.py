"""An attempt that outlives its lease must not run on beside the attempt the dispatcher starts
after the lease: it is interrupted before the lease runs out and counts as a failed attempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import celery_stack, executions

pytestmark = pytest.mark.integration


def test_an_attempt_longer_than_its_lease_is_interrupted_and_retried_never_doubled(
    tmp_path: Path,
) -> None:
    with celery_stack(
        tmp_path,
        LEASE_SECONDS="3",
        TASK_RUN_SECONDS="30",  # every attempt would outlive its lease tenfold
        MAX_ATTEMPTS="2",
    ) as stack:
        worker = stack.worker("high")
        stack.dispatcher()
        task = stack.create(Priority.HIGH, a=1, b=2)
        assert task.id is not None

        (done,) = stack.wait_finished([task.id], timeout=30)

        assert done.status is TaskStatus.FAILED
        assert done.attempts == 2
        assert done.error_message is not None
        assert "SoftTimeLimitExceeded" in done.error_message, done.error_message
        # Each attempt recorded its own failure while it held the claim: none was cut off and
        # taken for a lost worker, and no second attempt ever overlapped the first.
        assert "lost" not in done.error_message
        assert len(executions(worker, task.id)) == 2

"""Messages of several dispatches on real workers, a real dispatcher, PostgreSQL and Redis
(issue 14): each entry is claimed on its own, a failure or a stale entry touches only its task,
a worker killed mid-message gives its tasks back by their leases, and the lost-message sweep,
counting dispatches rather than messages, never republishes a live backlog yet still finds lost
messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.broker import CeleryTaskQueue
from adapters.broker.redis_publisher import EXACTLY_COUNTED
from application.ports import Dispatch
from application.use_cases import ChangePriorityRequest, CreateTaskRequest
from domain.priority import Priority
from domain.task import LEASE_EXPIRED_MESSAGE, TaskStatus
from tests.integration.celery_stack import CeleryStack, celery_stack, dropped, executions
from tests.processes import wait_until

pytestmark = pytest.mark.integration

LOST_AFTER_SECONDS = 1.0
LEASE_SECONDS = 6.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CeleryStack]:
    with celery_stack(
        tmp_path,
        LOST_MESSAGE_AFTER_SECONDS=str(LOST_AFTER_SECONDS),
        LEASE_SECONDS=str(LEASE_SECONDS),
        MAX_ATTEMPTS="10",
    ) as stack:
        yield stack


def created(stack: CeleryStack, count: int, priority: Priority) -> list[int]:
    """Created together, as one group of the API's creates is."""
    tasks = stack.container.create_task().execute_all(
        [CreateTaskRequest(a=i, b=i, priority=priority) for i in range(count)]
    )
    return [t.id for t in tasks if not isinstance(t, Exception) and t.id is not None]


def one_message(stack: CeleryStack, priority: Priority, entries: list[tuple[int, int]]) -> None:
    queue = CeleryTaskQueue(stack.container.celery_app(), max_tasks=100, spread=1)
    queue.publish([Dispatch(task_id, no, priority) for task_id, no in entries])


def test_stale_and_live_entries_of_one_message_each_get_their_own_answer(
    stack: CeleryStack,
) -> None:
    # Priority 3 and no dispatcher: nothing is published but the message below.
    live = created(stack, 5, Priority.LOW)
    moved, cancelled, *runs = live
    stack.container.change_priority().execute(
        ChangePriorityRequest(task_id=moved, priority=Priority.MEDIUM)
    )
    stack.container.cancel_task().execute(cancelled)
    one_message(stack, Priority.LOW, [(task_id, 1) for task_id in live] + [(10**12, 1)])
    assert CeleryTaskQueue(stack.container.celery_app()).pending(Priority.LOW) == 1
    worker = stack.worker("low")

    done = stack.wait_finished(runs, timeout=20)
    assert [(t.status, t.result, t.attempts) for t in done] == [
        (TaskStatus.SUCCESS, 2 * i, 1) for i in range(2, 5)
    ]
    assert (stack.task(moved).status, stack.task(moved).dispatch_no) == (TaskStatus.QUEUED, 2)
    assert stack.task(cancelled).status is TaskStatus.CANCELLED
    wait_until(lambda: dropped(worker, 10**12, 1), timeout=5, what="the unknown entry dropped")
    for task_id in (moved, cancelled):
        assert len(dropped(worker, task_id, 1)) == 1
    for task_id in runs:
        assert len(executions(worker, task_id)) == 1  # one line per attempt, per task


def test_failures_in_the_middle_of_messages_fail_their_tasks_alone(stack: CeleryStack) -> None:
    stack.dispatcher()
    worker = stack.worker("high", TASK_FAILURE_RATE="0.5")  # a pool of two processes
    ids = created(stack, 60, Priority.HIGH)  # one group: two messages of 30
    done = stack.wait_finished(ids, timeout=60)
    assert worker.log_text().count("injected fault") > 0, "no attempt failed: nothing tested"
    for i, task in enumerate(done):
        assert task.id is not None
        lines = len(executions(worker, task.id))
        assert lines == task.attempts, f"task {task.id}: one line per attempt"
        if task.status is TaskStatus.SUCCESS:
            assert task.result == 2 * i
        else:
            assert (task.status, task.attempts) == (TaskStatus.FAILED, 10)
    assert sum(t.attempts == 1 and t.status is TaskStatus.SUCCESS for t in done) > 0


def test_a_worker_killed_mid_message_gives_its_tasks_back_by_their_leases(
    stack: CeleryStack,
) -> None:
    stack.dispatcher()
    # Six attempts of 0.5 s in one message: a third of the lease (2 s) is over before the last
    # two begin, so those are given back (released) rather than started; killed after 1 s.
    slow = stack.worker("low", TASK_RUN_SECONDS="0.5")
    ids = created(stack, 6, Priority.LOW)
    one_message(stack, Priority.LOW, [(task_id, 1) for task_id in ids])
    wait_until(
        lambda: all(t.status is TaskStatus.RUNNING for t in stack.tasks(ids)),
        timeout=5,
        what="every task of the message claimed",
    )
    time.sleep(1.0)
    slow.kill()  # kill -9 of the worker and its pool: no outcome written, no acknowledgement
    assert all(t.status is TaskStatus.RUNNING for t in stack.tasks(ids))
    fresh = stack.worker("low", name="worker-low-fresh")  # a log of its own

    done = stack.wait_finished(ids, timeout=30)
    for i, task in enumerate(done):
        assert (task.status, task.result, task.attempts) == (TaskStatus.SUCCESS, 2 * i, 2)
        assert task.id is not None
        assert len(executions(fresh, task.id)) == 1  # ran once more, and once only
        assert executions(slow, task.id) == []  # nothing of the killed attempts was recorded
    assert LEASE_EXPIRED_MESSAGE not in {t.error_message for t in done}  # cleared by success


def test_a_live_backlog_of_many_task_messages_is_never_republished_and_a_lost_one_is(
    stack: CeleryStack,
) -> None:
    stack.dispatcher()
    ids = created(stack, 300, Priority.HIGH)  # 3 messages of 100, published at once
    queue = CeleryTaskQueue(stack.container.celery_app(), max_tasks=100)
    assert queue.pending(Priority.HIGH) == 3
    assert queue.waiting_dispatches(Priority.HIGH) == 300

    # No worker: the messages wait through many rounds of the sweep (every 50 ms), which counts
    # their 300 dispatches, not 3 messages, so none is taken for lost.
    time.sleep(3 * LOST_AFTER_SECONDS)
    assert {task.dispatch_no for task in stack.tasks(ids)} == {1}

    stack.redis().flushdb()  # every message lost
    stack.worker("high")
    done = stack.wait_finished(ids, timeout=30)
    assert [(t.status, t.result, t.attempts) for t in done] == [
        (TaskStatus.SUCCESS, 2 * i, 1) for i in range(300)
    ]
    assert all(task.dispatch_no >= 2 for task in done), "every lost message was republished"


def test_waiting_dispatches_are_counted_exactly_while_few_messages_wait(
    stack: CeleryStack,
) -> None:
    queue = CeleryTaskQueue(stack.container.celery_app(), max_tasks=7)
    queue.publish([Dispatch(i, 1, Priority.MEDIUM) for i in range(1, 51)])  # 8 messages
    assert (queue.pending(Priority.MEDIUM), queue.waiting_dispatches(Priority.MEDIUM)) == (8, 50)
    singles = CeleryTaskQueue(stack.container.celery_app())
    singles.publish([Dispatch(i, 1, Priority.MEDIUM) for i in range(100, 100 + EXACTLY_COUNTED)])
    messages = 8 + EXACTLY_COUNTED
    assert queue.pending(Priority.MEDIUM) == messages
    assert queue.waiting_dispatches(Priority.MEDIUM) == messages * 7  # beyond: a bound

"""A move that makes a task due at once publishes it after the commit; if the broker is down then,
the move still stands and the dispatcher publishes the task when the broker is back."""

from __future__ import annotations

from application.ports import Dispatch
from application.use_cases import ChangePriorityRequest, CreateTaskRequest
from domain.priority import Priority
from domain.task import TaskStatus
from tests.fakes import transient
from tests.unit.conftest import Core


def test_a_priority_change_while_the_broker_is_down_is_kept_and_published_later(
    core: Core,
) -> None:
    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.LOW))
    assert task.id is not None
    core.queue.available = False

    changed = core.change_priority.execute(
        ChangePriorityRequest(task_id=task.id, priority=Priority.HIGH)
    )

    stored = core.uow.stored(task.id)
    assert (stored.priority, stored.dispatch_no, stored.published_at) == (Priority.HIGH, 2, None)
    assert changed.priority is Priority.HIGH
    core.queue.available = True
    core.dispatch_due.execute()
    assert core.queue.published == [Dispatch(task.id, 2, Priority.HIGH)]
    core.deliver()
    assert core.uow.stored(task.id).result == 3


def test_a_manual_retry_while_the_broker_is_down_is_kept_and_published_later(core: Core) -> None:
    core.arithmetic.failures = [transient()] * 3
    task = core.create_task.execute(CreateTaskRequest(a=2, b=2, priority=Priority.HIGH))
    assert task.id is not None
    core.run_until_idle()
    assert core.uow.stored(task.id).status is TaskStatus.FAILED
    core.queue.available = False

    core.retry_task.execute(task.id)

    stored = core.uow.stored(task.id)
    assert (stored.status, stored.attempts, stored.published_at) == (TaskStatus.QUEUED, 0, None)
    core.queue.available = True
    core.run_until_idle()
    done = core.uow.stored(task.id)
    assert (done.status, done.result, done.attempts) == (TaskStatus.SUCCESS, 4, 1)

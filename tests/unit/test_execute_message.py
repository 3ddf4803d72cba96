"""ExecuteTask on a message of several dispatches (issue 14): one claim and one outcome write for
the whole message, each task judged on its own."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from application.ports import AttemptResult
from application.use_cases import (
    AttemptOutcome,
    ChangePriorityRequest,
    CreateTaskRequest,
    ExecuteTaskRequest,
    ExecuteTaskResult,
)
from domain.priority import Priority
from domain.task import LEASE_EXPIRED_MESSAGE, Pair, TaskStatus, add_pairs
from tests.fakes import ScriptedArithmetic, WorkerKilled, transient
from tests.unit.conftest import LEASE, Core


def created(core: Core, count: int, priority: Priority = Priority.HIGH) -> list[int]:
    tasks = core.create_task.execute_all(
        [CreateTaskRequest(a=i, b=i, priority=priority) for i in range(count)]
    )
    return [task.id for task in tasks if not isinstance(task, Exception) and task.id is not None]


def one_message(core: Core) -> list[ExecuteTaskResult]:
    """A worker takes every waiting dispatch as one message."""
    requests = [ExecuteTaskRequest(d.task_id, d.dispatch_no, d.priority) for d in core.queue.take()]
    return core.execute_task.execute_all(requests)


class CountingUnitOfWork:
    """Counts the units of work a message costs, through the fake's own `__enter__`."""

    def __init__(self, core: Core) -> None:
        self.entered = 0
        original = type(core.uow).__enter__

        def counting(uow: object) -> object:
            self.entered += 1
            return original(core.uow)

        core.uow.__class__ = type("Counted", (type(core.uow),), {"__enter__": counting})


def test_a_message_of_many_tasks_costs_one_claim_and_one_outcome_write() -> None:
    core = Core()
    ids = created(core, 50)
    counter = CountingUnitOfWork(core)
    results = one_message(core)
    assert [r.outcome for r in results] == [AttemptOutcome.RECORDED] * 50
    assert counter.entered == 2  # the claims, the outcomes (inversions: priority 1 has none)
    for i, task_id in enumerate(ids):
        task = core.uow.stored(task_id)
        assert (task.status, task.result, task.attempts) == (TaskStatus.SUCCESS, 2 * i, 1)
    assert [p for p, *_ in core.metrics.started] == [Priority.HIGH] * 50
    assert [r for _, r, _ in core.metrics.finished] == [AttemptResult.SUCCESS] * 50


def test_stale_and_live_entries_in_one_message_each_get_their_own_answer(core: Core) -> None:
    live, moved, cancelled, done = created(core, 4)
    core.change_priority.execute(
        ChangePriorityRequest(task_id=moved, priority=Priority.LOW)
    )  # its entry becomes stale
    core.cancel_task.execute(cancelled)
    entries = core.queue.take()
    core.execute_task.execute_all([ExecuteTaskRequest(done, 1, Priority.HIGH)])  # ran already
    requests = [ExecuteTaskRequest(d.task_id, d.dispatch_no, d.priority) for d in entries]
    requests.append(ExecuteTaskRequest(10**9, 1, Priority.HIGH))  # no such task
    requests.append(ExecuteTaskRequest(live, 1, Priority.HIGH))  # named twice in one message
    core.metrics.finished.clear()
    results = core.execute_task.execute_all(requests)
    outcomes = [r.outcome for r in results]
    stale = AttemptOutcome.STALE_MESSAGE
    assert outcomes == [AttemptOutcome.RECORDED, stale, stale, stale, stale, stale]
    assert core.uow.stored(live).attempts == 1
    assert core.uow.stored(moved).status is TaskStatus.QUEUED
    assert core.uow.stored(cancelled).status is TaskStatus.CANCELLED
    assert core.uow.stored(done).attempts == 1
    finished = [r for _, r, _ in core.metrics.finished]
    assert finished.count(AttemptResult.SUCCESS) == 1
    assert finished.count(AttemptResult.STALE_DROPPED) == 5


def test_a_failure_in_the_middle_of_a_message_fails_that_task_alone(core: Core) -> None:
    first, middle, last = created(core, 3)

    class FailsTheMiddle(ScriptedArithmetic):
        def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]:
            if pairs == [(1, 1)]:
                raise transient("the middle one")
            return add_pairs(pairs)

    core.execute_task._arithmetic = FailsTheMiddle()
    results = one_message(core)
    assert [r.result for r in results] == [
        AttemptResult.SUCCESS,
        AttemptResult.RETRIED,
        AttemptResult.SUCCESS,
    ]
    assert core.uow.stored(first).status is TaskStatus.SUCCESS
    assert core.uow.stored(last).status is TaskStatus.SUCCESS
    retried = core.uow.stored(middle)
    assert (retried.status, retried.dispatch_no, retried.error_message) == (
        TaskStatus.QUEUED,
        2,
        "the middle one",
    )
    # its own backoff: 1 s base with the fake jitter, from the time its work ended
    assert retried.scheduled_for > core.clock.now()


def test_a_worker_killed_mid_message_gives_every_task_back_by_its_lease(core: Core) -> None:
    ids = created(core, 5)
    core.arithmetic.failures = [transient(), WorkerKilled()]  # dies during the second task
    with pytest.raises(WorkerKilled):
        one_message(core)
    assert {core.uow.stored(i).status for i in ids} == {TaskStatus.RUNNING}  # nothing recorded
    core.clock.advance(LEASE.total_seconds())
    assert core.dispatch_due.execute().expired_leases == 5
    assert {core.uow.stored(i).error_message for i in ids} == {LEASE_EXPIRED_MESSAGE}
    one_message(core)
    for i, task_id in enumerate(ids):
        task = core.uow.stored(task_id)
        assert (task.status, task.result, task.attempts) == (TaskStatus.SUCCESS, 2 * i, 2)


def test_a_task_whose_turn_comes_after_a_third_of_the_lease_is_released_not_run(core: Core) -> None:
    ids = created(core, 4)

    class Slow(ScriptedArithmetic):
        def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]:
            core.clock.advance(LEASE.total_seconds() / 6 + 0.1)
            return add_pairs(pairs)

    core.execute_task._arithmetic = Slow()
    results = one_message(core)
    assert [r.outcome for r in results] == [AttemptOutcome.RECORDED] * 2 + [
        AttemptOutcome.RELEASED
    ] * 2
    released = [core.uow.stored(i) for i in ids[2:]]
    for task in released:
        assert (task.status, task.attempts, task.dispatch_no) == (TaskStatus.QUEUED, 0, 2)
        assert task.should_publish(core.clock.now())  # the dispatcher publishes it at once
    assert len(core.metrics.started) == 2  # no attempt of the released ones started
    core.dispatch_due.execute()
    one_message(core)
    assert all(core.uow.stored(i).status is TaskStatus.SUCCESS for i in ids)
    assert [core.uow.stored(i).attempts for i in ids] == [1, 1, 1, 1]

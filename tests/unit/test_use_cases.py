"""The use cases, called in-process on the fakes."""

from __future__ import annotations

import pytest

from application.errors import TaskNotFound
from application.ports import Dispatch, TaskFilter
from application.use_cases import (
    AttemptOutcome,
    ChangePriorityRequest,
    CreateBatchRequest,
    CreateTaskRequest,
    ExecuteTaskRequest,
    ExecuteTaskResult,
    ListTasksRequest,
)
from domain.errors import (
    BatchTooLarge,
    IllegalTransition,
    InvalidOperands,
)
from domain.priority import Priority
from domain.task import LEASE_EXPIRED_MESSAGE, Task, TaskStatus, TaskType
from tests.fakes import WorkerKilled, transient
from tests.unit.conftest import LEASE, LOST_AFTER, Core

RECORDED, STALE = AttemptOutcome.RECORDED, AttemptOutcome.STALE_MESSAGE


def create(core: Core, a: int = 1, b: int = 2, priority: Priority = Priority.MEDIUM) -> int:
    task = core.create_task.execute(CreateTaskRequest(a=a, b=b, priority=priority))
    assert task.id is not None
    return task.id


def test_a_high_priority_task_is_committed_and_published_at_once(core: Core) -> None:
    task_id = create(core, 10, 20, Priority.HIGH)
    assert core.uow.stored(task_id).status is TaskStatus.QUEUED
    assert core.queue.published == [Dispatch(task_id, 1, Priority.HIGH)]
    core.deliver()
    done = core.uow.stored(task_id)
    assert (done.status, done.result, done.attempts) == (TaskStatus.SUCCESS, 30, 1)


@pytest.mark.parametrize(("priority", "delay"), [(Priority.MEDIUM, 5), (Priority.LOW, 10)])
def test_delayed_tasks_are_published_by_the_dispatcher_when_due(
    core: Core, priority: Priority, delay: int
) -> None:
    task_id = create(core, priority=priority)
    assert core.queue.published == []
    core.clock.advance(delay - 0.001)
    core.dispatch_due.execute()
    assert core.queue.published == []
    core.clock.advance(0.001)
    assert core.dispatch_due.execute().published == 1
    assert core.queue.published == [Dispatch(task_id, 1, priority)]
    assert core.dispatch_due.execute().published == 0


def test_a_round_says_when_the_next_delayed_task_comes_due(core: Core) -> None:
    assert core.dispatch_due.execute().next_due_in_seconds is None  # nothing waits
    create(core, priority=Priority.LOW)  # due in 10 s
    core.clock.advance(1)
    create(core, priority=Priority.MEDIUM)  # due in 5 s: sooner than the low one's 9
    assert core.dispatch_due.execute().next_due_in_seconds == pytest.approx(5)
    core.clock.advance(5)
    report = core.dispatch_due.execute()
    assert (report.published, report.next_due_in_seconds) == (1, pytest.approx(4))
    core.clock.advance(4)
    report = core.dispatch_due.execute()
    assert (report.published, report.next_due_in_seconds) == (1, None)


def test_a_due_high_priority_retry_does_not_wait_behind_a_backlog_of_due_low_tasks(
    core: Core,
) -> None:
    lows = [create(core, i, i, Priority.LOW) for i in range(150)]  # more than one round's batch
    core.clock.advance(10)  # all due, none published yet
    core.arithmetic.failures = [transient()]
    high = create(core, 1, 1, Priority.HIGH)
    core.deliver()  # its first attempt fails: retried after a backoff, later than the lows' start
    core.clock.advance(5)
    assert core.dispatch_due.execute().published == 100
    round_one = core.queue.published[1:]
    assert round_one[0] == Dispatch(high, 2, Priority.HIGH)
    assert [d.task_id for d in round_one[1:]] == lows[:99]


def test_the_exact_sum_of_two_big_operands(core: Core) -> None:
    task_id = create(core, 2**62, 2**62, Priority.HIGH)
    core.deliver()
    assert core.uow.stored(task_id).result == 2**63


def test_a_batch_returns_its_sums_in_order(core: Core) -> None:
    pairs = [(i, -2 * i) for i in range(50)] + [(2**63 - 1, 1)]
    task = core.create_batch.execute(CreateBatchRequest(pairs=pairs, priority=Priority.HIGH))
    core.deliver()
    assert task.id is not None
    done = core.uow.stored(task.id)
    assert done.type is TaskType.BATCH
    assert done.results == [-i for i in range(50)] + [2**63]


def test_a_batch_over_the_limit_is_refused_and_nothing_is_stored(core: Core) -> None:
    with pytest.raises(BatchTooLarge):
        core.create_batch.execute(CreateBatchRequest(pairs=[(1, 1)] * (core.max_pairs + 1)))
    assert core.uow.store.rows == {}


def test_invalid_operands_store_nothing(core: Core) -> None:
    with pytest.raises(InvalidOperands):
        core.create_task.execute(CreateTaskRequest(a=True, b=1))
    assert core.uow.store.rows == {}


def test_a_queued_low_task_moved_to_high_is_published_once_on_high_and_runs_once(
    core: Core,
) -> None:
    task_id = create(core, 4, 5, Priority.LOW)
    core.clock.advance(10)
    core.dispatch_due.execute()
    assert core.queue.published == [Dispatch(task_id, 1, Priority.LOW)]  # already on the low queue

    core.change_priority.execute(ChangePriorityRequest(task_id=task_id, priority=Priority.HIGH))
    assert core.queue.published[1:] == [Dispatch(task_id, 2, Priority.HIGH)]

    outcomes = core.deliver()  # the stale low message and the high one both arrive
    assert [o.outcome for o in outcomes] == [STALE, RECORDED]
    assert outcomes[1].task is not None and outcomes[1].task.id == task_id
    core.clock.advance(60)
    core.dispatch_due.execute()
    core.deliver()
    done = core.uow.stored(task_id)
    assert (done.status, done.result, done.attempts, done.priority) == (
        TaskStatus.SUCCESS,
        9,
        1,
        Priority.HIGH,
    )
    assert core.arithmetic.calls == 1
    assert [d for d in core.queue.published if d.priority is Priority.HIGH] == [
        Dispatch(task_id, 2, Priority.HIGH)
    ]


def test_a_priority_change_to_a_delayed_priority_waits_for_the_new_delay(core: Core) -> None:
    task_id = create(core, priority=Priority.LOW)
    core.clock.advance(8)
    core.change_priority.execute(ChangePriorityRequest(task_id=task_id, priority=Priority.MEDIUM))
    core.clock.advance(4.9)
    core.dispatch_due.execute()
    assert core.queue.published == []
    core.clock.advance(0.1)
    core.dispatch_due.execute()
    assert core.queue.published == [Dispatch(task_id, 2, Priority.MEDIUM)]


def test_changing_priority_of_a_finished_task_is_refused(core: Core) -> None:
    task_id = create(core, priority=Priority.HIGH)
    core.deliver()
    with pytest.raises(IllegalTransition):
        core.change_priority.execute(ChangePriorityRequest(task_id=task_id, priority=Priority.LOW))
    assert core.uow.stored(task_id).priority is Priority.HIGH


def test_unknown_ids_raise_not_found(core: Core) -> None:
    with pytest.raises(TaskNotFound):
        core.get_task.execute(404)
    with pytest.raises(TaskNotFound):
        core.change_priority.execute(ChangePriorityRequest(task_id=404, priority=Priority.LOW))
    with pytest.raises(TaskNotFound):
        core.retry_task.execute(404)
    with pytest.raises(TaskNotFound):
        core.cancel_task.execute(404)


def test_a_duplicate_message_runs_the_task_once(core: Core) -> None:
    task_id = create(core, 1, 1, Priority.HIGH)
    core.queue.publish(list(core.queue.published))  # the broker delivers it twice
    first, second = core.deliver()
    assert (first.outcome, second.outcome) == (RECORDED, STALE)
    assert core.arithmetic.calls == 1
    assert core.uow.stored(task_id).attempts == 1


def test_a_message_for_an_unknown_task_changes_nothing(core: Core) -> None:
    done = core.execute_task.execute(ExecuteTaskRequest(task_id=99, dispatch_no=1))
    assert (done.outcome, done.task) == (STALE, None)
    assert core.uow.store.rows == {}


def test_a_failing_task_is_retried_with_growing_delays_then_fails_with_its_error(
    core: Core,
) -> None:
    core.arithmetic.failures = [transient("glitch 1"), transient("glitch 2"), transient("glitch 3")]
    task_id = create(core, 2, 3, Priority.HIGH)
    core.deliver()
    first = core.uow.stored(task_id)
    assert (first.status, first.attempts, first.error_message) == (TaskStatus.QUEUED, 1, "glitch 1")
    first_wait = first.scheduled_for - core.clock.now()

    core.clock.current = first.scheduled_for
    core.dispatch_due.execute()
    core.deliver()
    second = core.uow.stored(task_id)
    assert (second.status, second.attempts) == (TaskStatus.QUEUED, 2)
    assert second.scheduled_for - core.clock.now() > first_wait

    core.clock.current = second.scheduled_for
    core.dispatch_due.execute()
    core.deliver()
    failed = core.uow.stored(task_id)
    assert (failed.status, failed.attempts, failed.error_message) == (
        TaskStatus.FAILED,
        3,
        "glitch 3",
    )
    assert failed.result is None

    core.retry_task.execute(task_id)  # manual retry: the work now succeeds
    core.run_until_idle()
    done = core.uow.stored(task_id)
    assert (done.status, done.result, done.attempts, done.error_message) == (
        TaskStatus.SUCCESS,
        5,
        1,
        None,
    )


def test_an_unexpected_exception_counts_as_a_failed_attempt(core: Core) -> None:
    core.arithmetic.failures = [ZeroDivisionError("oops")]
    task_id = create(core, priority=Priority.HIGH)
    core.deliver()
    task = core.uow.stored(task_id)
    assert task.status is TaskStatus.QUEUED
    assert task.error_message == "ZeroDivisionError: oops"


def test_manual_retry_is_refused_unless_failed(core: Core) -> None:
    task_id = create(core)
    with pytest.raises(IllegalTransition):
        core.retry_task.execute(task_id)


def test_a_cancelled_task_never_runs_even_if_its_message_arrives(core: Core) -> None:
    task_id = create(core, priority=Priority.HIGH)
    core.cancel_task.execute(task_id)
    assert [done.outcome for done in core.deliver()] == [STALE]
    assert core.arithmetic.calls == 0
    assert core.uow.stored(task_id).status is TaskStatus.CANCELLED
    with pytest.raises(IllegalTransition):
        core.cancel_task.execute(task_id)


def test_a_task_accepted_while_the_broker_is_down_is_published_by_the_dispatcher(
    core: Core,
) -> None:
    core.queue.available = False
    task_id = create(core, 3, 4, Priority.HIGH)
    assert core.uow.stored(task_id).published_at is None
    assert core.dispatch_due.execute().broker_available is False
    core.queue.available = True
    core.dispatch_due.execute()
    core.deliver()
    assert core.uow.stored(task_id).result == 7


def test_creates_accepted_together_share_one_commit_and_one_publish(core: Core) -> None:
    requests = [CreateTaskRequest(a=i, b=1, priority=Priority(1 + i % 3)) for i in range(9)]
    requests.insert(4, CreateTaskRequest(a=2**63, b=1, priority=Priority.HIGH))
    commits = core.uow.commits

    outcomes = core.create_task.execute_all(requests)

    assert isinstance(outcomes[4], InvalidOperands)
    tasks = [o for o in outcomes if isinstance(o, Task)]
    assert [(t.a, t.priority) for t in tasks] == [(i, Priority(1 + i % 3)) for i in range(9)]
    # One commit for the tasks, then one recording the publication of the due ones.
    assert core.uow.commits == commits + 2
    assert [core.uow.stored(t.id or 0).a for t in tasks] == list(range(9))
    high = [Dispatch(t.id or 0, 1, Priority.HIGH) for t in tasks if t.priority is Priority.HIGH]
    assert core.queue.published == high
    core.deliver()
    assert [core.uow.stored(d.task_id).result for d in high] == [1, 4, 7]


def test_creates_accepted_together_while_the_broker_is_down_are_all_kept(core: Core) -> None:
    core.queue.available = False
    outcomes = core.create_task.execute_all(
        [CreateTaskRequest(a=i, b=i, priority=Priority.HIGH) for i in range(5)]
    )
    ids = [o.id for o in outcomes if isinstance(o, Task) and o.id is not None]
    assert len(ids) == 5
    assert all(core.uow.stored(i).published_at is None for i in ids)
    core.queue.available = True
    core.dispatch_due.execute()
    core.deliver()
    assert [core.uow.stored(i).result for i in ids] == [0, 2, 4, 6, 8]


def test_a_wiped_broker_loses_no_task_and_runs_none_twice(core: Core) -> None:
    ids = [create(core, i, i, Priority.HIGH) for i in range(20)]
    core.queue.wipe()
    core.clock.advance(LOST_AFTER.total_seconds() - 1)
    assert core.dispatch_due.execute().republished_lost == 0
    core.clock.advance(2)
    assert core.dispatch_due.execute().republished_lost == 20
    core.deliver()
    assert [core.uow.stored(i).result for i in ids] == [2 * i for i in range(20)]
    assert core.arithmetic.calls == 20


def test_overdue_messages_still_on_a_busy_queue_are_not_duplicated(core: Core) -> None:
    create(core, priority=Priority.HIGH)
    core.clock.advance(LOST_AFTER.total_seconds() * 2)
    assert core.dispatch_due.execute().republished_lost == 0
    assert len(core.queue.published) == 1


def test_a_lost_message_is_republished_while_the_queue_keeps_receiving_new_ones(
    core: Core,
) -> None:
    ids = []
    for i in range(10):
        ids.append(create(core, i, 1, Priority.HIGH))
        core.clock.advance(0.01)
    # A worker took the oldest message while the store was down, and Celery acknowledged it.
    lost = core.queue.waiting.pop(0)
    assert lost.task_id == ids[0]
    republished = 0
    for i in range(10, 30):  # workers lag behind: the queue never empties
        core.clock.advance(LOST_AFTER.total_seconds() / 10)
        ids.append(create(core, i, 1, Priority.HIGH))
        report = core.dispatch_due.execute()
        republished += report.republished_lost
        assert core.queue.pending(Priority.HIGH) > 0
    assert republished == 1
    assert [d for d in core.queue.published if d.task_id == ids[0]] == [
        Dispatch(ids[0], 1, Priority.HIGH),
        Dispatch(ids[0], 2, Priority.HIGH),
    ]
    core.deliver()
    assert [core.uow.stored(i).result for i in ids] == [i + 1 for i in range(30)]
    assert core.arithmetic.calls == 30


def test_a_long_backlog_of_live_messages_is_never_republished(core: Core) -> None:
    ids = []
    for i in range(200):  # no worker for five times `lost_after`, tasks still arriving
        ids.append(create(core, i, 1, Priority.HIGH))
        if i % 10 == 0:  # cancelled and re-prioritised tasks leave extra messages behind
            core.cancel_task.execute(create(core, priority=Priority.HIGH))
            moved = create(core, priority=Priority.HIGH)
            core.change_priority.execute(
                ChangePriorityRequest(task_id=moved, priority=Priority.MEDIUM)
            )
        core.clock.advance(LOST_AFTER.total_seconds() / 40)
        assert core.dispatch_due.execute().republished_lost == 0
    assert len({d.task_id for d in core.queue.published}) == len(core.queue.published) - 20
    assert core.queue.pending(Priority.HIGH) == 200 + 20 + 20
    core.deliver()
    assert all(core.uow.stored(i).status is TaskStatus.SUCCESS for i in ids)


def test_a_lost_worker_s_task_runs_again_with_the_lost_attempt_counted(core: Core) -> None:
    task_id = create(core, 6, 7, Priority.HIGH)
    core.arithmetic.failures = [WorkerKilled()]
    with pytest.raises(WorkerKilled):
        core.deliver()  # the claim was committed, then the worker died
    assert core.uow.stored(task_id).status is TaskStatus.RUNNING
    core.clock.advance(LEASE.total_seconds() - 1)
    assert core.dispatch_due.execute().expired_leases == 0
    core.clock.advance(1)
    assert core.dispatch_due.execute().expired_leases == 1
    core.deliver()
    done = core.uow.stored(task_id)
    assert (done.status, done.result, done.attempts) == (TaskStatus.SUCCESS, 13, 2)


def test_a_late_result_from_an_attempt_that_lost_its_lease_is_dropped(core: Core) -> None:
    task_id = create(core, 1, 2, Priority.HIGH)
    second_attempt: list[ExecuteTaskResult] = []

    def lease_runs_out_and_another_attempt_runs() -> None:
        core.clock.advance(LEASE.total_seconds())
        core.dispatch_due.execute()
        second_attempt.extend(core.deliver())

    core.arithmetic.meanwhile = lease_runs_out_and_another_attempt_runs
    (slow,) = core.deliver()

    assert slow.outcome is AttemptOutcome.LOST_CLAIM  # its result was dropped, not written
    assert slow.task is not None and slow.task.dispatch_no == 1
    (replacement,) = second_attempt
    assert replacement.outcome is RECORDED
    assert replacement.task is not None and replacement.task.dispatch_no == 2
    task = core.uow.stored(task_id)
    assert (task.status, task.result, task.attempts, task.dispatch_no) == (
        TaskStatus.SUCCESS,
        3,
        2,
        2,
    )


def test_a_late_failure_does_not_undo_the_task_s_expiry_on_its_last_attempt(core: Core) -> None:
    task_id = create(core, 1, 2, Priority.HIGH)
    core.arithmetic.failures = [transient(), transient()]
    core.deliver()
    core.clock.advance(5)
    core.dispatch_due.execute()
    core.deliver()  # attempts 1 and 2 failed: the third is the last

    def lease_runs_out() -> None:
        core.clock.advance(LEASE.total_seconds())
        assert core.dispatch_due.execute().expired_leases == 1

    core.clock.advance(10)
    core.dispatch_due.execute()
    core.arithmetic.meanwhile = lease_runs_out
    (late,) = core.deliver()
    assert late.outcome is AttemptOutcome.LOST_CLAIM
    failed = core.uow.stored(task_id)
    assert (failed.status, failed.attempts, failed.result) == (TaskStatus.FAILED, 3, None)
    assert failed.error_message == LEASE_EXPIRED_MESSAGE


def test_a_priority_change_during_a_run_does_not_lose_the_result(core: Core) -> None:
    task_id = create(core, 2, 2, Priority.LOW)
    core.clock.advance(10)
    core.dispatch_due.execute()
    core.arithmetic.meanwhile = lambda: core.change_priority.execute(
        ChangePriorityRequest(task_id=task_id, priority=Priority.HIGH)
    )
    (done,) = core.deliver()
    assert done.outcome is RECORDED
    assert done.task is not None and done.task.priority is Priority.HIGH  # as stored
    task = core.uow.stored(task_id)
    assert (task.status, task.result, task.attempts, task.priority) == (
        TaskStatus.SUCCESS,
        4,
        1,
        Priority.HIGH,
    )


def test_many_priority_changes_during_a_run_neither_fail_nor_lose_the_result(core: Core) -> None:
    task_id = create(core, 2, 5, Priority.LOW)
    core.clock.advance(10)
    core.dispatch_due.execute()
    moved: list[Task] = []

    def storm() -> None:
        for i in range(300):
            request = ChangePriorityRequest(task_id=task_id, priority=Priority(1 + i % 3))
            moved.append(core.change_priority.execute(request))

    core.arithmetic.meanwhile = storm
    (done,) = core.deliver()
    assert len(moved) == 300
    assert done.outcome is RECORDED
    task = core.uow.stored(task_id)
    assert (task.status, task.result, task.attempts) == (TaskStatus.SUCCESS, 7, 1)
    assert task.priority is Priority(1 + 299 % 3)  # the last change, kept by the outcome


def test_a_retry_after_a_failure_is_dispatched_on_the_priority_recorded_during_the_run(
    core: Core,
) -> None:
    task_id = create(core, 1, 1, Priority.LOW)
    core.clock.advance(10)
    core.dispatch_due.execute()
    core.arithmetic.failures = [transient()]
    core.arithmetic.meanwhile = lambda: core.change_priority.execute(
        ChangePriorityRequest(task_id=task_id, priority=Priority.HIGH)
    )
    (failed,) = core.deliver()
    assert failed.outcome is RECORDED
    requeued = core.uow.stored(task_id)
    assert (requeued.status, requeued.priority, requeued.dispatch_no) == (
        TaskStatus.QUEUED,
        Priority.HIGH,
        2,
    )
    core.clock.current = requeued.scheduled_for  # the retry's backoff, not a priority delay
    core.dispatch_due.execute()
    assert core.queue.published[-1] == Dispatch(task_id, 2, Priority.HIGH)
    core.deliver()
    assert core.uow.stored(task_id).result == 2


def test_list_is_newest_first_filtered_and_paged(core: Core) -> None:
    ids = [create(core, i, i, Priority(1 + i % 3)) for i in range(7)]
    core.deliver()  # the priority-1 ones finish
    everything = core.list_tasks.execute(ListTasksRequest(limit=3, offset=0))
    assert [t.id for t in everything.items] == ids[::-1][:3]
    assert everything.total == 7
    done = core.list_tasks.execute(ListTasksRequest(filter=TaskFilter(status=TaskStatus.SUCCESS)))
    assert sorted(t.id or 0 for t in done.items) == [ids[0], ids[3], ids[6]]
    low = core.list_tasks.execute(
        ListTasksRequest(filter=TaskFilter(priority=Priority.LOW), offset=1)
    )
    assert [t.id for t in low.items] == [ids[2]]
    assert low.total == 2


def test_health_reports_each_part(core: Core) -> None:
    healthy = core.check_health.execute()
    assert healthy.healthy and healthy.consumers == {p: 1 for p in Priority}
    core.queue.available = False
    broken = core.check_health.execute()
    assert not broken.healthy
    assert broken.database == "ok"
    assert broken.broker.startswith("unavailable")
    core.uow.available = False
    assert core.check_health.execute().database.startswith("unavailable")


def test_many_tasks_of_every_kind_all_finish_exactly_once(core: Core) -> None:
    ids = [create(core, i, 1, Priority(1 + i % 3)) for i in range(30)]
    core.arithmetic.failures = [transient()] * 5
    core.run_until_idle()
    results = [core.uow.stored(i) for i in ids]
    assert all(t.status is TaskStatus.SUCCESS for t in results)
    assert [t.result for t in results] == [i + 1 for i in range(30)]
    assert core.arithmetic.calls == 35

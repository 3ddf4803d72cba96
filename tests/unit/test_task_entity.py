"""The state machine as the entity enforces it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import pytest

from domain.errors import IllegalTransition, InvalidOperands, PermanentTaskFailure, TaskFailure
from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy
from domain.task import (
    ATTEMPT_OUTCOME_FIELDS,
    LEASE_EXPIRED_MESSAGE,
    Task,
    TaskStatus,
    add_pairs,
)
from tests.factories import BatchTaskFactory, TaskFactory
from tests.fakes import EPOCH

SCHEDULE = SchedulePolicy()
NO_JITTER = RetryPolicy(backoff_base=timedelta(seconds=2), jitter=0.0)
LEASE = timedelta(seconds=30)


def running(**kwargs: object) -> Task:
    task: Task = TaskFactory(**kwargs)
    task.claim(task.dispatch_no, EPOCH, LEASE)
    return task


@pytest.mark.parametrize(
    ("priority", "delay"), [(Priority.HIGH, 0), (Priority.MEDIUM, 5), (Priority.LOW, 10)]
)
def test_a_new_task_is_queued_and_starts_after_its_priority_delay(
    priority: Priority, delay: int
) -> None:
    task = Task.single(1, 2, priority=priority, now=EPOCH, schedule=SCHEDULE, max_attempts=3)
    assert task.status is TaskStatus.QUEUED
    assert task.scheduled_for == EPOCH + timedelta(seconds=delay)
    assert task.is_due(EPOCH) is (delay == 0)
    assert (task.attempts, task.dispatch_no, task.published_at) == (0, 1, None)


def test_delays_are_configurable() -> None:
    schedule = SchedulePolicy({p: timedelta(milliseconds=100 * p) for p in Priority})
    task = Task.single(1, 2, priority=Priority.LOW, now=EPOCH, schedule=schedule, max_attempts=3)
    assert task.scheduled_for == EPOCH + timedelta(milliseconds=300)


def test_priority_queue_names() -> None:
    assert [p.queue_name for p in Priority] == ["high", "medium", "low"]


@pytest.mark.parametrize(
    "bad", [True, False, 1.0, 2.5, "3", None, [1], 2**63, -(2**63) - 1, 10**30]
)
def test_operands_must_be_int64(bad: object) -> None:
    with pytest.raises(InvalidOperands):
        Task.single(bad, 1, priority=Priority.HIGH, now=EPOCH, schedule=SCHEDULE, max_attempts=3)
    with pytest.raises(InvalidOperands):
        Task.batch(
            [(1, 1), (1, bad)], priority=Priority.HIGH, now=EPOCH, schedule=SCHEDULE, max_attempts=3
        )


def test_int64_bounds_are_accepted_and_sums_are_exact() -> None:
    assert add_pairs([(2**62, 2**62)]) == [2**63]
    assert add_pairs([(2**63 - 1, 2**63 - 1), (-(2**63), -(2**63))]) == [2**64 - 2, -(2**64)]


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(InvalidOperands):
        Task.batch([], priority=Priority.HIGH, now=EPOCH, schedule=SCHEDULE, max_attempts=3)


def test_changing_priority_of_a_queued_task_reschedules_from_now_and_makes_old_messages_stale() -> (
    None
):
    task: Task = TaskFactory(priority=Priority.LOW)
    task.mark_published(EPOCH)
    later = EPOCH + timedelta(seconds=3)
    task.change_priority(Priority.MEDIUM, later, SCHEDULE)
    assert task.priority is Priority.MEDIUM
    assert task.scheduled_for == later + timedelta(seconds=5)
    assert task.dispatch_no == 2
    assert task.published_at is None
    assert not task.can_claim(1)
    assert task.can_claim(2)


@pytest.mark.parametrize("status", [TaskStatus.RUNNING, TaskStatus.FAILED])
def test_changing_priority_of_a_running_or_failed_task_only_records_it(status: TaskStatus) -> None:
    task: Task = TaskFactory(status=status, dispatch_no=4, priority=Priority.LOW)
    task.change_priority(Priority.HIGH, EPOCH, SCHEDULE)
    assert (task.priority, task.status, task.dispatch_no) == (Priority.HIGH, status, 4)


@pytest.mark.parametrize("status", [TaskStatus.SUCCESS, TaskStatus.CANCELLED])
def test_changing_priority_of_a_finished_task_is_illegal(status: TaskStatus) -> None:
    task: Task = TaskFactory(status=status)
    with pytest.raises(IllegalTransition):
        task.change_priority(Priority.HIGH, EPOCH, SCHEDULE)
    assert task.priority is Priority.MEDIUM


def test_claim_needs_queued_and_the_current_dispatch_number() -> None:
    task: Task = TaskFactory(dispatch_no=2)
    with pytest.raises(IllegalTransition):
        task.claim(1, EPOCH, LEASE)
    task.claim(2, EPOCH, LEASE)
    assert task.status is TaskStatus.RUNNING
    assert task.attempts == 1
    assert task.started_at == EPOCH
    assert task.lease_expires_at == EPOCH + LEASE
    with pytest.raises(IllegalTransition):
        task.claim(2, EPOCH, LEASE)


def test_complete_stores_exact_sums_in_order() -> None:
    task: Task = BatchTaskFactory(pairs=[(2**62, 2**62), (3, 4), (-1, -2)])
    task.claim(1, EPOCH, LEASE)
    task.complete(1, add_pairs(task.operands), EPOCH + timedelta(seconds=1))
    assert task.results == [2**63, 7, -3]
    assert task.status is TaskStatus.SUCCESS
    assert task.finished_at == EPOCH + timedelta(seconds=1)
    assert task.lease_expires_at is None


def test_only_the_attempt_holding_the_claim_completes() -> None:
    task = running()
    with pytest.raises(IllegalTransition):
        task.complete(task.dispatch_no + 1, [1], EPOCH)
    assert task.status is TaskStatus.RUNNING


def test_a_failed_attempt_with_budget_left_is_requeued_after_growing_backoff() -> None:
    task = running()
    task.fail_attempt(1, TaskFailure("boom"), EPOCH, NO_JITTER)
    assert task.status is TaskStatus.QUEUED
    assert task.scheduled_for == EPOCH + timedelta(seconds=2)
    assert task.error_message == "boom"
    assert task.dispatch_no == 2
    task.claim(2, EPOCH, LEASE)
    task.fail_attempt(2, TaskFailure("boom again"), EPOCH, NO_JITTER)
    assert task.scheduled_for == EPOCH + timedelta(seconds=4)
    task.claim(3, EPOCH, LEASE)
    task.fail_attempt(3, TaskFailure("third"), EPOCH, NO_JITTER)
    assert task.status is TaskStatus.FAILED
    assert task.attempts == 3
    assert task.error_message == "third"
    assert task.finished_at == EPOCH


@pytest.mark.parametrize(
    "outcome",
    ["success", "batch success", "failed, retried", "failed, budget spent", "permanent failure"],
)
def test_an_attempt_s_outcome_changes_only_the_outcome_fields(outcome: str) -> None:
    # The store writes an outcome back as these fields only: one more changed here would be lost.
    task: Task = BatchTaskFactory(pairs=[(1, 2)]) if outcome == "batch success" else running()
    if outcome == "batch success":
        task.claim(1, EPOCH, LEASE)
    if outcome == "failed, budget spent":
        task.attempts = task.max_attempts
    before = asdict(task)
    later = EPOCH + timedelta(seconds=3)
    if outcome.endswith("success"):
        task.complete(1, add_pairs(task.operands), later)
    else:
        failure = PermanentTaskFailure("no") if outcome.startswith("permanent") else TaskFailure()
        task.fail_attempt(1, failure, later, NO_JITTER)
    changed = {name for name, value in asdict(task).items() if before[name] != value}
    assert "status" in changed
    assert changed <= set(ATTEMPT_OUTCOME_FIELDS)


def test_a_permanent_failure_fails_at_once() -> None:
    task = running()
    task.fail_attempt(1, PermanentTaskFailure("never works"), EPOCH, NO_JITTER)
    assert task.status is TaskStatus.FAILED
    assert task.attempts == 1


def test_backoff_is_exponential_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy(
        backoff_base=timedelta(seconds=1),
        backoff_cap=timedelta(seconds=5),
        jitter=0.5,
        random=lambda: 1.0,
    )
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    no_draw = RetryPolicy(backoff_base=timedelta(seconds=1), jitter=0.5, random=lambda: 0.0)
    assert no_draw.backoff(3) == timedelta(seconds=4)


def test_manual_retry_is_for_failed_tasks_and_resets_the_budget() -> None:
    task: Task = TaskFactory(
        status=TaskStatus.FAILED, attempts=3, error_message="x", finished_at=EPOCH
    )
    task.retry(EPOCH, SCHEDULE)
    assert task.status is TaskStatus.QUEUED
    assert (task.attempts, task.error_message, task.finished_at) == (0, None, None)
    assert task.scheduled_for == EPOCH + timedelta(seconds=5)
    for status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUCCESS, TaskStatus.CANCELLED):
        with pytest.raises(IllegalTransition):
            TaskFactory(status=status).retry(EPOCH, SCHEDULE)


def test_cancel_is_for_queued_tasks_only() -> None:
    task: Task = TaskFactory()
    task.cancel(EPOCH)
    assert task.status is TaskStatus.CANCELLED
    assert task.finished_at == EPOCH
    with pytest.raises(IllegalTransition):
        running().cancel(EPOCH)


def test_an_expired_lease_requeues_and_keeps_the_attempt_counted() -> None:
    task = running()
    with pytest.raises(IllegalTransition):
        task.expire_lease(EPOCH + LEASE - timedelta(seconds=1))
    task.expire_lease(EPOCH + LEASE)
    assert task.status is TaskStatus.QUEUED
    assert task.attempts == 1
    assert task.dispatch_no == 2
    assert task.scheduled_for == EPOCH + LEASE
    assert task.error_message == LEASE_EXPIRED_MESSAGE


def test_an_expired_lease_on_the_last_attempt_fails_the_task() -> None:
    task = running(max_attempts=1)
    task.expire_lease(EPOCH + LEASE)
    assert task.status is TaskStatus.FAILED
    assert task.error_message == LEASE_EXPIRED_MESSAGE


def test_backoff_stays_at_the_cap_however_many_attempts() -> None:
    policy = RetryPolicy(backoff_cap=timedelta(minutes=5), jitter=0.0)
    assert [policy.backoff(n) for n in (48, 60, 10_000)] == [timedelta(minutes=5)] * 3


@pytest.mark.parametrize(
    ("status", "due", "published", "publish"),
    [
        (TaskStatus.QUEUED, True, False, True),
        (TaskStatus.QUEUED, True, True, False),  # its message is on the broker already
        (TaskStatus.QUEUED, False, False, False),  # the dispatcher's, once due
        (TaskStatus.RUNNING, True, False, False),
        (TaskStatus.SUCCESS, True, False, False),
        (TaskStatus.FAILED, True, False, False),
        (TaskStatus.CANCELLED, True, False, False),
    ],
)
def test_a_task_is_published_when_queued_due_and_not_yet_published(
    status: TaskStatus, due: bool, published: bool, publish: bool
) -> None:
    task: Task = TaskFactory(
        status=status,
        scheduled_for=EPOCH if due else EPOCH + timedelta(seconds=1),
        published_at=EPOCH if published else None,
    )

    assert task.should_publish(EPOCH) is publish


def test_every_move_that_queues_a_task_again_makes_it_publishable_once_due() -> None:
    published: Task = TaskFactory(priority=Priority.HIGH, scheduled_for=EPOCH, published_at=EPOCH)
    assert not published.should_publish(EPOCH)
    published.change_priority(Priority.HIGH, EPOCH, SCHEDULE)
    assert published.should_publish(EPOCH)

    failed = running(priority=Priority.HIGH)
    failed.fail_attempt(failed.dispatch_no, PermanentTaskFailure("no"), EPOCH, NO_JITTER)
    failed.retry(EPOCH, SCHEDULE)
    assert failed.should_publish(EPOCH)

    lost: Task = TaskFactory(scheduled_for=EPOCH, published_at=EPOCH)
    lost.republish_lost(EPOCH)
    assert lost.should_publish(EPOCH)

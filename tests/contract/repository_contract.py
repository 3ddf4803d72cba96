"""The promises of the TaskRepository / UnitOfWork ports, as tests.

Subclass `TaskRepositoryContract` and provide a `uow` fixture holding an empty store: the unit
tests run it against the in-memory fake, the integration tests against PostgreSQL and SQLite."""

from __future__ import annotations

import copy
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from application.errors import ConcurrentModification
from application.ports import TaskFilter, UnitOfWork
from domain.errors import PermanentTaskFailure, TaskFailure
from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy
from domain.task import Task, TaskStatus, TaskType

NOW = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
SCHEDULE = SchedulePolicy()
LEASE = timedelta(seconds=45)
RETRY = RetryPolicy(backoff_base=timedelta(seconds=1), random=lambda: 0.5)


def single(
    a: int = 1, b: int = 2, priority: Priority = Priority.MEDIUM, now: datetime = NOW
) -> Task:
    return Task.single(a, b, priority=priority, now=now, schedule=SCHEDULE, max_attempts=3)


def batch(pairs: list[tuple[int, int]], priority: Priority = Priority.MEDIUM) -> Task:
    return Task.batch(pairs, priority=priority, now=NOW, schedule=SCHEDULE, max_attempts=3)


def added(uow: UnitOfWork, *tasks: Task) -> list[int]:
    with uow:
        for task in tasks:
            uow.tasks.add(task)
        uow.commit()
    return [t.id for t in tasks if t.id is not None]


def stored(uow: UnitOfWork, task_id: int) -> Task:
    with uow:
        task = uow.tasks.get(task_id)
    assert task is not None
    return task


def _cancel_and_add_without_commit(uow: UnitOfWork, task_id: int) -> None:
    """Three statements in one transaction, left without a commit: none of them may be kept."""
    with uow:
        task = uow.tasks.get(task_id)
        assert task is not None
        task.cancel(NOW)
        uow.tasks.save(task)
        uow.tasks.add(single(7, 7))


class TaskRepositoryContract:
    def test_ids_are_assigned_increasing_and_survive_the_round_trip(self, uow: UnitOfWork) -> None:
        first, second = added(uow, single(), single())
        assert second > first
        assert stored(uow, second).id == second

    def test_add_all_stores_every_task_with_ids_increasing_in_their_order(
        self, uow: UnitOfWork
    ) -> None:
        (earlier,) = added(uow, single())
        tasks = [single(i, -i, Priority(1 + i % 3)) for i in range(1, 8)]
        tasks.append(batch([(2**63 - 1, 1), (3, 4)]))
        with uow:
            uow.tasks.add_all(tasks)
            uow.commit()
        ids = [task.id for task in tasks]
        assert all(isinstance(task_id, int) for task_id in ids)
        assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > earlier
        for task, task_id in zip(tasks, ids, strict=True):
            back = stored(uow, task_id or 0)
            assert (back.a, back.b, back.pairs, back.priority) == (
                task.a,
                task.b,
                task.pairs,
                task.priority,
            )

    def test_add_all_keeps_nothing_without_commit(self, uow: UnitOfWork) -> None:
        with uow:
            uow.tasks.add_all([single(), single(), single()])
        with uow:
            assert uow.tasks.page(TaskFilter(), 10, 0).total == 0

    def test_every_field_round_trips(self, uow: UnitOfWork) -> None:
        task = single(2**62, 2**62, Priority.LOW)
        (task_id,) = added(uow, task)
        task.claim(1, NOW + timedelta(seconds=10), timedelta(seconds=30))
        task.complete(1, [2**63], NOW + timedelta(seconds=11))
        with uow:
            uow.tasks.save(task)
            uow.commit()
        back = stored(uow, task_id)
        assert back.result == 2**63
        assert back.status is TaskStatus.SUCCESS
        assert back.priority is Priority.LOW
        assert back.type is TaskType.SINGLE
        assert (back.a, back.b) == (2**62, 2**62)
        assert back.created_at == NOW
        assert back.created_at.utcoffset() == timedelta(0)
        assert back.scheduled_for == NOW + timedelta(seconds=10)
        assert back.started_at == NOW + timedelta(seconds=10)
        assert back.finished_at == NOW + timedelta(seconds=11)
        assert back.attempts == 1
        assert back.max_attempts == 3
        assert back.dispatch_no == 1
        assert back.version == task.version

    def test_a_batch_keeps_its_pairs_and_results_in_order_and_exact(self, uow: UnitOfWork) -> None:
        pairs = [(2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)), (5, -7), (0, 0)]
        task = batch(pairs)
        (task_id,) = added(uow, task)
        task.claim(1, NOW, timedelta(seconds=30))
        task.complete(1, [a + b for a, b in pairs], NOW)
        with uow:
            uow.tasks.save(task)
            uow.commit()
        back = stored(uow, task_id)
        assert back.pairs == pairs
        assert back.results == [2**64 - 2, -(2**64), -2, 0]
        assert back.result is None

    def test_nothing_is_kept_without_commit(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single())
        _cancel_and_add_without_commit(uow, task_id)
        assert stored(uow, task_id).status is TaskStatus.QUEUED
        with uow:
            assert uow.tasks.page(TaskFilter(), 10, 0).total == 1

    def test_a_one_write_unit_runs_its_statement_and_refuses_a_second(
        self, uow: UnitOfWork
    ) -> None:
        (task_id,) = added(uow, single())
        with uow.one_write():
            claimed = uow.tasks.claim(task_id, 1, NOW, LEASE)
            with pytest.raises(RuntimeError, match="single statement"):
                uow.tasks.get(task_id)
            uow.commit()
        assert claimed is not None
        assert stored(uow, task_id).status is TaskStatus.RUNNING

    def test_the_unit_after_a_one_write_unit_is_a_whole_transaction_again(
        self, uow: UnitOfWork
    ) -> None:
        (task_id,) = added(uow, single())
        with uow.one_write():
            uow.tasks.add_all([single(5, 5)])
            uow.commit()
        _cancel_and_add_without_commit(uow, task_id)
        assert stored(uow, task_id).status is TaskStatus.QUEUED
        with uow:
            assert uow.tasks.page(TaskFilter(), 10, 0).total == 2

    def test_a_write_based_on_a_stale_read_is_refused(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single())
        first, second = stored(uow, task_id), stored(uow, task_id)
        first.claim(1, NOW, timedelta(seconds=30))
        with uow:
            uow.tasks.save(first)
            uow.commit()
        second.cancel(NOW)
        with uow, pytest.raises(ConcurrentModification):
            uow.tasks.save(second)
        assert stored(uow, task_id).status is TaskStatus.RUNNING

    def test_claim_writes_what_task_claim_does(self, uow: UnitOfWork) -> None:
        fresh, retried = single(7, 8, Priority.LOW), single(1, 1)
        retried.claim(1, NOW, LEASE)
        retried.fail_attempt(1, TaskFailure("glitch"), NOW, RETRY)  # attempt 1 spent: dispatch 2
        added(uow, fresh, retried)
        when = NOW + timedelta(seconds=12)
        for task in (fresh, retried):
            assert task.id is not None
            expected = stored(uow, task.id)
            # the entity's rule and effect
            expected.claim(expected.dispatch_no, when, LEASE, worker="low@box:42")
            expected.version += 1
            with uow:
                claimed = uow.tasks.claim(
                    task.id, task.dispatch_no, when, LEASE, worker="low@box:42"
                )
                uow.commit()
            assert claimed is not None
            assert asdict(claimed) == asdict(expected)
            assert asdict(stored(uow, task.id)) == asdict(expected)
            assert claimed.status is TaskStatus.RUNNING
            assert claimed.attempts == task.attempts + 1
            assert (claimed.started_at, claimed.lease_expires_at) == (when, when + LEASE)
            assert claimed.worker == "low@box:42"

    def test_claim_refuses_what_task_claim_refuses_and_changes_nothing(
        self, uow: UnitOfWork
    ) -> None:
        queued, running, cancelled = single(), single(), single()
        running.claim(1, NOW, LEASE)
        cancelled.cancel(NOW)
        added(uow, queued, running, cancelled)
        assert queued.id is not None and running.id is not None and cancelled.id is not None
        refused = {
            "stale dispatch number": (queued.id, 0),
            "future dispatch number": (queued.id, 2),
            "already running": (running.id, 1),
            "cancelled": (cancelled.id, 1),
        }
        for case, (task_id, dispatch_no) in refused.items():
            before = stored(uow, task_id)
            assert not before.can_claim(dispatch_no), case
            with uow:
                assert uow.tasks.claim(task_id, dispatch_no, NOW, LEASE) is None, case
                uow.commit()
            assert asdict(stored(uow, task_id)) == asdict(before), case
        with uow:
            assert uow.tasks.claim(10**12, 1, NOW, LEASE) is None  # unknown id
        with uow:
            assert uow.tasks.page(TaskFilter(), 10, 0).total == 3

    def test_claim_succeeds_whatever_else_changed_and_only_once(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single())
        published = stored(uow, task_id)  # the dispatcher records its publication meanwhile
        published.mark_published(NOW)
        with uow:
            uow.tasks.save(published)
            uow.commit()
        with uow:
            first = uow.tasks.claim(task_id, 1, NOW, LEASE)
            second = uow.tasks.claim(task_id, 1, NOW, LEASE)  # a duplicate message
            uow.commit()
        assert first is not None and first.version == 2
        assert second is None
        assert stored(uow, task_id).attempts == 1

    def test_a_claim_is_kept_only_if_committed(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single())
        with uow:
            assert uow.tasks.claim(task_id, 1, NOW, LEASE) is not None
        assert stored(uow, task_id).status is TaskStatus.QUEUED

    def _claimed(self, uow: UnitOfWork, task: Task) -> Task:
        (task_id,) = added(uow, task)
        with uow.one_write():
            claimed = uow.tasks.claim(task_id, task.dispatch_no, NOW, LEASE)
            uow.commit()
        assert claimed is not None
        return claimed

    @pytest.mark.parametrize("outcome", ["success", "retry", "failed"])
    def test_record_outcome_writes_the_entity_s_outcome_under_the_claim(
        self, uow: UnitOfWork, outcome: str
    ) -> None:
        claimed = self._claimed(uow, batch([(1, 2), (3, 4)]) if outcome == "success" else single())
        assert claimed.id is not None
        later = NOW + timedelta(seconds=2)
        if outcome == "success":
            claimed.complete(1, [3, 7], later)
        else:
            if outcome == "failed":
                claimed.max_attempts = claimed.attempts  # not a field an outcome writes
            claimed.fail_attempt(1, TaskFailure("glitch"), later, RETRY)
        expected = copy.deepcopy(claimed)
        expected.version += 1
        if outcome == "failed":
            expected.max_attempts = 3  # as stored
        with uow.one_write():
            recorded = uow.tasks.record_outcome(claimed, 1)
            uow.commit()
        assert recorded is not None
        assert asdict(recorded) == asdict(expected)
        assert asdict(stored(uow, claimed.id)) == asdict(expected)

    def test_record_outcome_keeps_a_priority_recorded_while_the_attempt_ran(
        self, uow: UnitOfWork
    ) -> None:
        claimed = self._claimed(uow, single(2, 5, Priority.LOW))
        assert claimed.id is not None
        with uow:
            moving = uow.tasks.get_for_update(claimed.id)
            assert moving is not None
            moving.change_priority(Priority.HIGH, NOW, SCHEDULE)
            uow.tasks.save(moving)
            uow.commit()
        claimed.fail_attempt(1, TaskFailure("glitch"), NOW, RETRY)  # from the claimed copy
        with uow:
            recorded = uow.tasks.record_outcome(claimed, 1)
            uow.commit()
        assert recorded is not None
        back = stored(uow, claimed.id)
        assert (back.status, back.dispatch_no, back.priority, back.version) == (
            TaskStatus.QUEUED,
            2,
            Priority.HIGH,
            3,
        )
        assert asdict(recorded) == asdict(back)

    def test_record_outcome_without_the_claim_changes_nothing(self, uow: UnitOfWork) -> None:
        claimed = self._claimed(uow, single())
        assert claimed.id is not None
        handed_on = stored(uow, claimed.id)
        handed_on.expire_lease(NOW + LEASE)  # queued again under dispatch 2
        with uow:
            uow.tasks.save(handed_on)
            uow.commit()
        before = stored(uow, claimed.id)
        late = copy.deepcopy(claimed)
        late.complete(1, [3], NOW + LEASE)
        with uow:
            assert uow.tasks.record_outcome(late, 1) is None
            uow.commit()
        assert asdict(stored(uow, claimed.id)) == asdict(before)
        late.id = 10**12  # unknown id
        with uow:
            assert uow.tasks.record_outcome(late, 1) is None

    def test_claim_all_claims_each_live_entry_on_its_own_and_nothing_else(
        self, uow: UnitOfWork
    ) -> None:
        """One message mixing live and stale entries: each row is checked on its own status and
        dispatch number; the live ones are claimed exactly as `Task.claim` would, the others are
        left as they are."""
        live = [single(i, i, Priority.LOW) for i in range(3)]
        moved, running, cancelled = single(), single(), single()
        running.claim(1, NOW, LEASE)
        cancelled.cancel(NOW)
        added(uow, *live, moved, running, cancelled)
        with uow:
            moving = uow.tasks.get_for_update(moved.id or 0)
            assert moving is not None
            moving.change_priority(Priority.HIGH, NOW, SCHEDULE)  # dispatch 2: entry 1 stale
            uow.tasks.save(moving)
            uow.commit()
        ids = [task.id or 0 for task in (*live, moved, running, cancelled)]
        before = {task_id: stored(uow, task_id) for task_id in ids}
        entries = [(task_id, 1) for task_id in ids] + [(10**12, 1)]  # and an unknown id
        when = NOW + timedelta(seconds=3)
        with uow.one_write():
            claimed = uow.tasks.claim_all(entries, when, LEASE, worker="high@box:7")
            uow.commit()
        assert sorted(task.id or 0 for task in claimed) == sorted(t.id or 0 for t in live)
        for task in claimed:
            assert task.id is not None
            expected = before[task.id]
            expected.claim(1, when, LEASE, worker="high@box:7")
            expected.version += 1
            assert asdict(task) == asdict(expected)
            assert asdict(stored(uow, task.id)) == asdict(expected)
        for task_id in ids[3:]:
            assert asdict(stored(uow, task_id)) == asdict(before[task_id])
        with uow.one_write():
            assert uow.tasks.claim_all(entries, when, LEASE) == []  # the message again
            uow.commit()

    def test_record_outcomes_writes_each_outcome_under_its_own_claim(self, uow: UnitOfWork) -> None:
        """One statement for a message's outcomes: a success, a retry, a failure and a success
        again, plus one whose claim was lost meanwhile, which changes nothing."""
        tasks = [single(1, 2), batch([(1, 2), (3, 4)]), single(5, 6), single(7, 8), single()]
        added(uow, *tasks)
        with uow.one_write():
            claimed = uow.tasks.claim_all([(t.id or 0, 1) for t in tasks], NOW, LEASE)
            uow.commit()
        by_id = {task.id: task for task in claimed}
        done, batched, retried, failed, lost = (by_id[t.id] for t in tasks)
        later = NOW + timedelta(seconds=2)
        done.complete(1, [3], later)
        batched.complete(1, [3, 7], later + timedelta(milliseconds=1))
        retried.fail_attempt(1, TaskFailure("glitch"), later, RETRY)
        failed.fail_attempt(1, PermanentTaskFailure("bad"), later, RETRY)
        handed_on = stored(uow, lost.id or 0)
        handed_on.expire_lease(NOW + LEASE)
        with uow:
            uow.tasks.save(handed_on)
            uow.commit()
        lost.complete(1, [2], later)
        expected = {}
        for task in (done, batched, retried, failed):
            expected[task.id] = copy.deepcopy(task)
            expected[task.id].version += 1
        untouched = stored(uow, lost.id or 0)
        with uow.one_write():
            recorded = uow.tasks.record_outcomes(
                [(task, 1) for task in (done, batched, retried, failed, lost)]
            )
            uow.commit()
        assert sorted(task.id or 0 for task in recorded) == sorted(
            t.id or 0 for t in expected.values()
        )
        for task in recorded:
            assert asdict(task) == asdict(expected[task.id])
            assert asdict(stored(uow, task.id or 0)) == asdict(expected[task.id])
        assert asdict(stored(uow, lost.id or 0)) == asdict(untouched)
        assert stored(uow, retried.id or 0).dispatch_no == 2

    def test_a_released_claim_is_queued_again_at_once_with_its_attempt_not_counted(
        self, uow: UnitOfWork
    ) -> None:
        first, second = single(), single()
        added(uow, first, second)
        with uow.one_write():
            claimed = uow.tasks.claim_all([(first.id or 0, 1), (second.id or 0, 1)], NOW, LEASE)
            uow.commit()
        later = NOW + timedelta(seconds=30)
        for task in claimed:
            task.release(1, later)
        with uow.one_write():
            recorded = uow.tasks.record_outcomes([(task, 1) for task in claimed])
            uow.commit()
        assert len(recorded) == 2
        for task in recorded:
            assert (task.status, task.attempts, task.dispatch_no) == (TaskStatus.QUEUED, 0, 2)
            assert (task.scheduled_for, task.published_at) == (later, None)
            assert task.should_publish(later)

    def test_an_outcome_is_kept_only_if_committed(self, uow: UnitOfWork) -> None:
        claimed = self._claimed(uow, single())
        assert claimed.id is not None
        claimed.complete(1, [3], NOW)
        with uow:
            assert uow.tasks.record_outcome(claimed, 1) is not None
        assert stored(uow, claimed.id).status is TaskStatus.RUNNING

    def test_get_for_update_reads_what_get_reads(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single(4, 5))
        with uow:
            locked = uow.tasks.get_for_update(task_id)
            assert uow.tasks.get_for_update(10**12) is None
            assert locked is not None
            locked.cancel(NOW)
            uow.tasks.save(locked)
            uow.commit()
        assert stored(uow, task_id).status is TaskStatus.CANCELLED

    def test_page_is_newest_first_with_the_total_of_all_matches(self, uow: UnitOfWork) -> None:
        ids = added(uow, *(single(i, i) for i in range(5)))
        with uow:
            page = uow.tasks.page(TaskFilter(), limit=2, offset=1)
        assert [t.id for t in page.items] == [ids[3], ids[2]]
        assert page.total == 5

    def test_page_filters_by_status_type_and_priority(self, uow: UnitOfWork) -> None:
        low_single, high_batch, high_single = (
            single(priority=Priority.LOW),
            batch([(1, 1)], Priority.HIGH),
            single(priority=Priority.HIGH),
        )
        added(uow, low_single, high_batch, high_single)
        high_single.cancel(NOW)
        with uow:
            uow.tasks.save(high_single)
            uow.commit()
        with uow:
            by_priority = uow.tasks.page(TaskFilter(priority=Priority.HIGH), 10, 0)
            by_type = uow.tasks.page(TaskFilter(type=TaskType.BATCH), 10, 0)
            by_status = uow.tasks.page(TaskFilter(status=TaskStatus.CANCELLED), 10, 0)
            combined = uow.tasks.page(
                TaskFilter(status=TaskStatus.QUEUED, priority=Priority.HIGH), 10, 0
            )
        assert [t.id for t in by_priority.items] == [high_single.id, high_batch.id]
        assert [t.id for t in by_type.items] == [high_batch.id]
        assert [t.id for t in by_status.items] == [high_single.id]
        assert [t.id for t in combined.items] == [high_batch.id]
        assert combined.total == 1

    def test_due_for_dispatch_is_queued_unpublished_and_started(self, uow: UnitOfWork) -> None:
        due_early, due_late, not_yet = (
            single(priority=Priority.HIGH),
            single(),
            single(priority=Priority.LOW),
        )
        published, cancelled = single(priority=Priority.HIGH), single(priority=Priority.HIGH)
        published.mark_published(NOW)
        cancelled.cancel(NOW)
        added(uow, due_late, due_early, not_yet, published, cancelled)
        with uow:
            due = uow.tasks.due_for_dispatch(NOW + timedelta(seconds=5), limit=10)
            limited = uow.tasks.due_for_dispatch(NOW + timedelta(seconds=5), limit=1)
        assert [t.id for t in due] == [due_early.id, due_late.id]
        assert [t.id for t in limited] == [due_early.id]

    def test_next_due_after_is_the_earliest_future_start_of_an_unpublished_task(
        self, uow: UnitOfWork
    ) -> None:
        with uow:
            assert uow.tasks.next_due_after(NOW) is None
        medium, low = single(), single(priority=Priority.LOW)  # due at NOW + 5 s and + 10 s
        earlier_published = single(now=NOW - timedelta(seconds=3))  # due at NOW + 2 s
        earlier_published.mark_published(NOW)
        earlier_cancelled = single(now=NOW - timedelta(seconds=4))
        earlier_cancelled.cancel(NOW)
        already_due = single(priority=Priority.HIGH)  # due at NOW: not after it
        added(uow, low, medium, earlier_published, earlier_cancelled, already_due)
        with uow:
            assert uow.tasks.next_due_after(NOW) == medium.scheduled_for
            assert uow.tasks.next_due_after(medium.scheduled_for) == low.scheduled_for
            assert uow.tasks.next_due_after(low.scheduled_for) is None

    def test_due_for_dispatch_is_highest_priority_first_then_oldest_start(
        self, uow: UnitOfWork
    ) -> None:
        # Created in this order, all due by NOW + 30 s: the low ones started long before.
        low_early = single(priority=Priority.LOW, now=NOW - timedelta(seconds=60))
        low_late = single(priority=Priority.LOW, now=NOW - timedelta(seconds=50))
        medium = single(priority=Priority.MEDIUM, now=NOW)
        high_late = single(priority=Priority.HIGH, now=NOW + timedelta(seconds=20))
        high_early = single(priority=Priority.HIGH, now=NOW + timedelta(seconds=10))
        high_not_yet = single(priority=Priority.HIGH, now=NOW + timedelta(seconds=40))
        added(uow, low_early, low_late, medium, high_late, high_early, high_not_yet)
        with uow:
            due = uow.tasks.due_for_dispatch(NOW + timedelta(seconds=30), limit=10)
            first_two = uow.tasks.due_for_dispatch(NOW + timedelta(seconds=30), limit=2)
        assert [t.id for t in due] == [
            high_early.id,
            high_late.id,
            medium.id,
            low_early.id,
            low_late.id,
        ]
        assert [t.id for t in first_two] == [high_early.id, high_late.id]

    def test_save_published_writes_the_publication_of_a_whole_round(self, uow: UnitOfWork) -> None:
        ids = added(uow, *(single(i, i, Priority.HIGH) for i in range(3)))
        published_at = NOW + timedelta(seconds=1)
        with uow:
            due = uow.tasks.due_for_dispatch(published_at, limit=10)
            assert uow.tasks.save_published(due, published_at) == due
            uow.commit()
        assert [stored(uow, i).published_at for i in ids] == [published_at] * 3
        assert [stored(uow, i).version for i in ids] == [1] * 3
        # The copies in hand are as stored: a later move of one of them is accepted.
        assert [task.published_at for task in due] == [published_at] * 3
        due[0].cancel(published_at)
        with uow:
            uow.tasks.save(due[0])
            uow.commit()
        assert stored(uow, ids[0]).status is TaskStatus.CANCELLED

    def test_lock_and_save_published_leave_a_task_moved_claimed_or_published_since_read(
        self, uow: UnitOfWork
    ) -> None:
        kept, moved, claimed, cancelled, published = (
            stored(uow, task_id)
            for task_id in added(uow, *(single(i, i, Priority.HIGH) for i in range(5)))
        )
        later = NOW + timedelta(seconds=1)
        meanwhile = [stored(uow, t.id) for t in (moved, cancelled, published) if t.id]
        meanwhile[0].change_priority(Priority.HIGH, NOW, SCHEDULE)  # a new dispatch number
        meanwhile[1].cancel(NOW)
        meanwhile[2].mark_published(NOW)
        with uow:
            for task in meanwhile:
                uow.tasks.save(task)
            assert claimed.id is not None
            assert uow.tasks.claim(claimed.id, claimed.dispatch_no, NOW, LEASE) is not None
            uow.commit()

        everyone = [kept, moved, claimed, cancelled, published]
        with uow:
            assert uow.tasks.lock_awaiting_publication(everyone) == [kept]
        with uow:
            assert uow.tasks.save_published(everyone, later) == [kept]
            uow.commit()
        after = {t.id: stored(uow, t.id) for t in everyone if t.id}
        assert kept.published_at == later and kept.version == 1
        assert after[kept.id].published_at == later
        assert after[moved.id].published_at is None and after[moved.id].dispatch_no == 2
        assert after[claimed.id].published_at is None
        assert after[claimed.id].status is TaskStatus.RUNNING
        assert after[cancelled.id].published_at is None
        assert after[published.id].published_at == NOW
        assert [t.published_at for t in (moved, claimed, cancelled, published)] == [None] * 4

    def test_lost_messages_are_queued_tasks_of_one_priority_published_before_the_waiting_ones(
        self, uow: UnitOfWork
    ) -> None:
        def published(seconds: float, priority: Priority = Priority.MEDIUM) -> Task:
            task = single(priority=priority)
            task.mark_published(NOW + timedelta(seconds=seconds))
            return task

        t0, t1, t2, t3, t4 = (published(s) for s in range(5))
        after_count = published(20)
        other_priority, unpublished, cancelled = published(0, Priority.LOW), single(), published(0)
        cancelled.cancel(NOW)
        added(uow, t4, t2, t0, t3, t1, after_count, other_priority, unpublished, cancelled)

        def lost(waiting: int, before: float = 60, limit: int = 10) -> list[int | None]:
            with uow:
                found = uow.tasks.lost_messages(
                    Priority.MEDIUM,
                    waiting=waiting,
                    counted_at=NOW + timedelta(seconds=10),
                    published_before=NOW + timedelta(seconds=before),
                    limit=limit,
                )
            return [t.id for t in found]

        # An empty queue: every task published before the deadline, oldest first.
        assert lost(0) == [t0.id, t1.id, t2.id, t3.id, t4.id]
        assert lost(0, before=2.5) == [t0.id, t1.id, t2.id]
        # Two messages waiting belong to the two tasks published last before the count (t3,
        # t4; not the one published after it); the others lost theirs.
        assert lost(2) == [t0.id, t1.id, t2.id]
        assert lost(2, before=1.5) == [t0.id, t1.id]
        assert lost(2, limit=2) == [t0.id, t1.id]
        assert lost(4) == [t0.id]
        # As many messages as tasks, or more (duplicates, stale ones): none is lost.
        assert lost(5) == []
        assert lost(50) == []

    def test_lost_messages_count_a_task_published_with_the_oldest_waiting_one_as_waiting(
        self, uow: UnitOfWork
    ) -> None:
        first, second, third = single(), single(), single()
        first.mark_published(NOW)
        second.mark_published(NOW + timedelta(seconds=1))
        third.mark_published(NOW + timedelta(seconds=1))  # the same instant: order unknown
        added(uow, first, second, third)
        with uow:
            found = uow.tasks.lost_messages(
                Priority.MEDIUM,
                waiting=1,
                counted_at=NOW + timedelta(seconds=5),
                published_before=NOW + timedelta(seconds=5),
                limit=10,
            )
        assert [t.id for t in found] == [first.id]

    def test_expired_leases_are_running_tasks_past_their_lease(self, uow: UnitOfWork) -> None:
        expired, alive = single(), single()
        added(uow, expired, alive)
        expired.claim(1, NOW, timedelta(seconds=5))
        alive.claim(1, NOW, timedelta(seconds=60))
        with uow:
            uow.tasks.save(expired)
            uow.tasks.save(alive)
            uow.commit()
        with uow:
            found = uow.tasks.expired_leases(NOW + timedelta(seconds=10), 10)
        assert [t.id for t in found] == [expired.id]

    def test_higher_priority_waiting_sees_due_unclaimed_tasks_of_higher_priority_only(
        self, uow: UnitOfWork
    ) -> None:
        medium_due = single(priority=Priority.MEDIUM)  # due at NOW + 5 s, unpublished
        added(uow, medium_due)
        with uow:
            # Only a higher priority counts, and only once due.
            assert not uow.tasks.higher_priority_waiting(Priority.MEDIUM, NOW + timedelta(hours=1))
            assert not uow.tasks.higher_priority_waiting(Priority.LOW, NOW)
            assert uow.tasks.higher_priority_waiting(Priority.LOW, NOW + timedelta(seconds=5))
        high_published = single(priority=Priority.HIGH)
        high_published.mark_published(NOW + timedelta(seconds=1))
        added(uow, high_published)
        with uow:
            assert not uow.tasks.higher_priority_waiting(Priority.MEDIUM, NOW)
            assert uow.tasks.higher_priority_waiting(Priority.MEDIUM, NOW + timedelta(seconds=1))
        high_published.claim(high_published.dispatch_no, NOW, LEASE)
        with uow:
            uow.tasks.save(high_published)
            uow.commit()
        with uow:  # claimed: no longer waiting
            assert not uow.tasks.higher_priority_waiting(Priority.MEDIUM, NOW + timedelta(hours=1))

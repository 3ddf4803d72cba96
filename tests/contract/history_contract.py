"""The promises of the TaskHistory port, as tests: the store records each attempt and each move
of a task by itself, whoever moves it, and forgets them with the task.

Subclass `TaskHistoryContract` and provide a `uow` fixture holding an empty store: the unit tests
run it on the fake, the integration tests on PostgreSQL and SQLite (where triggers do it)."""

from __future__ import annotations

from datetime import timedelta

from application.ports import AttemptResult, UnitOfWork
from domain.errors import TaskFailure
from domain.priority import Priority
from domain.task import Task, TaskStatus
from tests.contract.repository_contract import LEASE, NOW, RETRY, SCHEDULE, added, single, stored


def _claim(uow: UnitOfWork, task_id: int, at: timedelta, worker: str | None = None) -> Task:
    task = stored(uow, task_id)
    with uow:
        claimed = uow.tasks.claim(task_id, task.dispatch_no, NOW + at, LEASE, worker=worker)
        uow.commit()
    assert claimed is not None
    return claimed


def _outcome(uow: UnitOfWork, task: Task, dispatch_no: int) -> None:
    with uow:
        assert uow.tasks.record_outcome(task, dispatch_no) is not None
        uow.commit()


def _save(uow: UnitOfWork, task: Task) -> None:
    with uow:
        uow.tasks.save(task)
        uow.commit()


class TaskHistoryContract:
    def test_an_attempt_is_opened_by_the_claim_and_closed_by_its_outcome(
        self, uow: UnitOfWork
    ) -> None:
        (task_id,) = added(uow, single(priority=Priority.HIGH))
        claimed = _claim(uow, task_id, timedelta(seconds=2), worker="high@box:4242")
        with uow:
            (running,) = uow.history.attempts(task_id)
        assert (running.number, running.dispatch_no, running.priority) == (1, 1, Priority.HIGH)
        assert running.worker == "high@box:4242"
        assert running.started_at == NOW + timedelta(seconds=2)
        assert running.lateness == timedelta(seconds=2)  # due at NOW: priority 1 has no delay
        assert (running.finished_at, running.outcome, running.error) == (None, None, None)

        claimed.complete(1, [3], NOW + timedelta(seconds=3))
        _outcome(uow, claimed, 1)
        with uow:
            (done,) = uow.history.attempts(task_id)
        assert done.finished_at == NOW + timedelta(seconds=3)
        assert (done.outcome, done.error) == (AttemptResult.SUCCESS, None)
        assert done.worker == "high@box:4242"

    def test_each_attempt_names_the_worker_of_its_own_claim(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single(priority=Priority.HIGH))
        first = _claim(uow, task_id, timedelta(0), worker="high@a:1")
        first.fail_attempt(1, TaskFailure("boom"), NOW + timedelta(seconds=1), RETRY)
        _outcome(uow, first, 1)
        second = _claim(uow, task_id, timedelta(seconds=5), worker="high-2@b:2")
        unnamed_id, *_ = added(uow, single(priority=Priority.HIGH))
        _claim(uow, unnamed_id, timedelta(0))
        with uow:
            attempts = uow.history.attempts(task_id)
            (unnamed,) = uow.history.attempts(unnamed_id)
        assert [a.worker for a in attempts] == ["high@a:1", "high-2@b:2"]
        assert stored(uow, task_id).worker == second.worker == "high-2@b:2"
        assert unnamed.worker is None

    def test_a_released_claim_closes_its_attempt_as_released_without_an_error(
        self, uow: UnitOfWork
    ) -> None:
        (task_id,) = added(uow, single(priority=Priority.HIGH))
        first = _claim(uow, task_id, timedelta(0))
        first.fail_attempt(1, TaskFailure("boom"), NOW + timedelta(seconds=1), RETRY)
        _outcome(uow, first, 1)  # the task keeps "boom" as its last error
        second = _claim(uow, task_id, timedelta(seconds=5))
        second.release(second.dispatch_no, NOW + timedelta(seconds=6))
        _outcome(uow, second, 2)
        with uow:
            attempts = uow.history.attempts(task_id)
        assert [(a.number, a.outcome) for a in attempts] == [
            (1, AttemptResult.RETRIED),
            (2, AttemptResult.RELEASED),
        ]
        assert (attempts[1].error, attempts[1].finished_at) == (None, NOW + timedelta(seconds=6))

    def test_a_failed_attempt_a_retry_and_a_lost_one_are_told_apart(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single(priority=Priority.HIGH))
        first = _claim(uow, task_id, timedelta(0))
        first.fail_attempt(1, TaskFailure("boom"), NOW + timedelta(seconds=1), RETRY)
        _outcome(uow, first, 1)
        second = _claim(uow, task_id, timedelta(seconds=5))
        second.expire_lease(NOW + timedelta(seconds=60))
        _save(uow, second)
        with uow:
            attempts = uow.history.attempts(task_id)
        assert [(a.number, a.dispatch_no) for a in attempts] == [(1, 1), (2, 2)]
        assert [a.outcome for a in attempts] == [AttemptResult.RETRIED, AttemptResult.LOST]
        assert attempts[0].error == "boom"
        assert attempts[1].finished_at == NOW + timedelta(seconds=60)
        # The retry was due after its backoff: its lateness is counted from then.
        assert attempts[1].lateness == NOW + timedelta(seconds=5) - first.scheduled_for

        third = _claim(uow, task_id, timedelta(seconds=61))
        third.fail_attempt(
            third.dispatch_no, TaskFailure("again"), NOW + timedelta(seconds=61), RETRY
        )
        _outcome(uow, third, third.dispatch_no)
        with uow:
            last = uow.history.attempts(task_id)[-1]
        assert (last.number, last.outcome, last.error) == (3, AttemptResult.FAILED, "again")

    def test_every_create_and_change_of_status_or_priority_is_an_event_in_order(
        self, uow: UnitOfWork
    ) -> None:
        first, other = added(uow, single(), single(priority=Priority.LOW))
        task = stored(uow, first)
        task.change_priority(Priority.HIGH, NOW + timedelta(seconds=1), SCHEDULE)
        _save(uow, task)
        task = stored(uow, first)
        task.mark_published(NOW + timedelta(seconds=1))  # neither status nor priority: no event
        _save(uow, task)
        task = stored(uow, first)
        task.cancel(NOW + timedelta(seconds=2))
        _save(uow, task)
        with uow:
            every = uow.history.events(0, 100)
            mine = uow.history.events(0, 100, task_id=first)
            last = uow.history.last_event_id()
        assert [(e.task_id, e.status, e.priority) for e in mine] == [
            (first, TaskStatus.QUEUED, Priority.MEDIUM),
            (first, TaskStatus.QUEUED, Priority.HIGH),
            (first, TaskStatus.CANCELLED, Priority.HIGH),
        ]
        assert [e.at for e in mine] == [NOW, NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)]
        assert {e.task_id for e in every} == {first, other} and len(every) == 4
        assert [e.id for e in every] == sorted(e.id for e in every) and last == every[-1].id
        with uow:
            after = uow.history.events(mine[0].id, 100, task_id=first)
            limited = uow.history.events(0, 1)
        assert after == mine[1:] and limited == every[:1]
        assert all(e.tenant == "default" for e in every)

    def test_history_goes_with_its_task_and_events_also_by_age(self, uow: UnitOfWork) -> None:
        kept, pruned = added(uow, single(priority=Priority.HIGH), single(priority=Priority.HIGH))
        for task_id in (kept, pruned):
            claimed = _claim(uow, task_id, timedelta(0))
            claimed.complete(1, [3], NOW)
            _outcome(uow, claimed, 1)
        with uow:
            uow.tasks.prune_finished(TaskStatus.SUCCESS, NOW + timedelta(seconds=1), 1)
            uow.commit()
        gone = pruned if stored_or_none(uow, kept) else kept
        still = kept if gone == pruned else pruned
        with uow:
            assert uow.history.attempts(gone) == [] and uow.history.events(0, 9, task_id=gone) == []
            assert len(uow.history.attempts(still)) == 1
        with uow:
            assert uow.history.prune_events(NOW + timedelta(microseconds=1), 1) == 1
            uow.commit()
        with uow:
            left = uow.history.events(0, 100)
        assert [e.status for e in left] == [TaskStatus.RUNNING, TaskStatus.SUCCESS]

    def test_not_yet_due_counts_queued_tasks_waiting_for_their_start_time(
        self, uow: UnitOfWork
    ) -> None:
        added(
            uow, single(priority=Priority.HIGH), single(), single(), single(priority=Priority.LOW)
        )
        with uow:
            assert uow.history.not_yet_due(NOW) == {Priority.MEDIUM: 2, Priority.LOW: 1}
            assert uow.history.not_yet_due(NOW + timedelta(seconds=7)) == {Priority.LOW: 1}

    def test_recent_attempts_are_the_latest_started_first(self, uow: UnitOfWork) -> None:
        ids = added(uow, *(single(priority=Priority.HIGH) for _ in range(3)))
        for seconds, task_id in enumerate(ids):
            _claim(uow, task_id, timedelta(seconds=seconds))
        with uow:
            recent = uow.history.recent_attempts(NOW + timedelta(seconds=1), 10)
            one = uow.history.recent_attempts(NOW, 1)
        assert [a.task_id for a in recent] == [ids[2], ids[1]]
        assert [a.task_id for a in one] == [ids[2]]


def stored_or_none(uow: UnitOfWork, task_id: int) -> Task | None:
    with uow:
        return uow.tasks.get(task_id)

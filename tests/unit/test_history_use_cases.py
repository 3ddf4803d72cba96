"""Reading the event log (missing ids, full reads), its retention, and explain's reasons that
need a broker fault or a lost lease."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.use_cases import (
    CreateTaskRequest,
    EventCursor,
    ExplainTask,
    FollowEvents,
    PruneFinishedTasks,
    ReasonCode,
    follow_events,
)
from domain.priority import Priority
from domain.task import Task, TaskStatus
from tests.fakes import WorkerKilled
from tests.unit.conftest import Core


def _create(core: Core, priority: Priority) -> Task:
    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=priority))
    assert isinstance(task, Task) and task.id is not None
    return task


def test_retention_deletes_events_older_than_their_age_and_keeps_the_rest(core: Core) -> None:
    first = _create(core, Priority.LOW)
    core.clock.advance(120)
    _create(core, Priority.LOW)
    prune = PruneFinishedTasks(
        core.uow, core.clock, {TaskStatus.SUCCESS: timedelta(0)}, 100, timedelta(seconds=60)
    )

    prune.execute()

    with core.uow:
        left = core.uow.history.events(0, 10)
    assert first.id is not None and [event.task_id for event in left] == [first.id + 1]


def test_explain_names_an_unreachable_broker_and_an_expired_lease(core: Core) -> None:
    task = _create(core, Priority.HIGH)
    assert task.id is not None
    explain = ExplainTask(core.uow, core.queue, core.clock)
    core.queue.available = False
    reasons = explain.execute(task.id).reasons
    assert [r.code for r in reasons] == [ReasonCode.BROKER_UNREACHABLE]
    core.queue.available = True
    core.arithmetic.failures = [WorkerKilled()]
    with pytest.raises(WorkerKilled):
        core.deliver()  # claimed, then the worker died
    core.clock.advance(3600)
    (reason,) = explain.execute(task.id).reasons
    assert reason.code is ReasonCode.LEASE_EXPIRED and reason.lease_until is not None


def test_a_reader_of_every_task_waits_on_a_missing_event_id_then_skips_it(core: Core) -> None:
    for _ in range(3):
        _create(core, Priority.LOW)
    # As on PostgreSQL while the transaction that took id 2 has not committed yet.
    core.uow.store.events = [e for e in core.uow.store.events if e.id != 2]
    patient, hasty = FollowEvents(core.uow, gap_wait=60), FollowEvents(core.uow, gap_wait=0)

    waiting = patient.open(EventCursor(), resume=True)
    assert [e.id for e in patient.next(waiting)] == [1]
    assert [e.id for e in patient.next(waiting)] == [] and waiting.after_id == 1
    skipping = hasty.open(EventCursor(), resume=True)
    assert [e.id for e in hasty.next(skipping)] == [1, 3]
    one_task = patient.open(EventCursor(task_id=3), resume=False)
    assert [e.id for e in patient.next(one_task)] == [3]  # one task's events never wait


def test_a_reader_reads_again_at_once_only_after_a_full_read_not_one_cut_by_a_missing_id(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow_events, "EVENTS_PER_READ", 2)
    for _ in range(6):
        _create(core, Priority.LOW)
    core.uow.store.events = [e for e in core.uow.store.events if e.id != 4]  # 4 not committed
    follow = FollowEvents(core.uow, gap_wait=60)
    cursor = follow.open(EventCursor(), resume=True)

    assert [e.id for e in follow.next(cursor)] == [1, 2] and cursor.more
    # Read 3 and 5, kept 3: the missing 4 is waited for, at the poll's pace, not read for again.
    assert [e.id for e in follow.next(cursor)] == [3] and not cursor.more


def test_a_reader_resuming_past_the_newest_event_reads_on_from_the_newest(core: Core) -> None:
    _create(core, Priority.LOW)
    follow = FollowEvents(core.uow, gap_wait=60)
    cursor = follow.open(EventCursor(after_id=10**9), resume=True)  # a restored database's client
    assert cursor.after_id == 1
    task = _create(core, Priority.LOW)
    assert [(e.id, e.task_id) for e in follow.next(cursor)] == [(2, task.id)]


def test_retention_prunes_old_events_in_batches_until_they_are_gone(core: Core) -> None:
    for _ in range(7):
        _create(core, Priority.LOW)
    core.clock.advance(120)
    prune = PruneFinishedTasks(core.uow, core.clock, {}, 2, timedelta(seconds=60))

    prune.execute()

    assert core.uow.store.events == []

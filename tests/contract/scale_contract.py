"""The repository's promises that keep its cost flat as the table grows: exact counts, keyset
pages, retention. Subclass `ScaleContract` with a `uow` fixture holding an empty store."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from application.ports import TaskFilter, UnitOfWork
from application.ports import repository as repository_port
from domain.errors import TaskFailure
from domain.priority import Priority
from domain.task import Task, TaskStatus, TaskType
from tests.contract.repository_contract import (
    LEASE,
    NOW,
    RETRY,
    SCHEDULE,
    added,
    batch,
    single,
    stored,
)

HOUR = timedelta(hours=1)


def every_task(uow: UnitOfWork) -> list[Task]:
    with uow:
        return uow.tasks.page(TaskFilter(), 1000, 0).items


def counted(uow: UnitOfWork) -> dict[tuple[TaskStatus, Priority, TaskType], int]:
    with uow:
        return {key: n for key, n in uow.tasks.counts().items() if n}


def real_counts(uow: UnitOfWork) -> dict[tuple[TaskStatus, Priority, TaskType], int]:
    return dict(Counter((t.status, t.priority, t.type) for t in every_task(uow)))


def moved(uow: UnitOfWork, task_id: int, move: str, at: object = NOW) -> None:
    with uow:
        task = uow.tasks.get_for_update(task_id)
        assert task is not None
        if move == "cancel":
            task.cancel(at)  # type: ignore[arg-type]
        elif move == "priority":
            task.change_priority(Priority.HIGH, NOW, SCHEDULE)
        elif move == "retry":
            task.retry(NOW, SCHEDULE)
        uow.tasks.save(task)
        uow.commit()


def finished(uow: UnitOfWork, task: Task, outcome: str, at: object = NOW) -> int:
    """Add, claim and finish a task (success or, its budget spent, failed) at `at`."""
    task.max_attempts = 1
    (task_id,) = added(uow, task)
    with uow:
        claimed = uow.tasks.claim(task_id, task.dispatch_no, NOW, LEASE)
        assert claimed is not None
        if outcome == "success":
            claimed.complete(claimed.dispatch_no, [0] * len(claimed.pairs or [(0, 0)]), at)  # type: ignore[arg-type]
        else:
            claimed.fail_attempt(claimed.dispatch_no, TaskFailure("boom"), at, RETRY)  # type: ignore[arg-type]
        assert uow.tasks.record_outcome(claimed, claimed.dispatch_no) is not None
        uow.commit()
    return task_id


class ScaleContract:
    def test_counts_follow_every_move_exactly(self, uow: UnitOfWork) -> None:
        ids = added(uow, single(priority=Priority.LOW), single(), batch([(1, 2)], Priority.HIGH))
        assert counted(uow) == real_counts(uow)
        moved(uow, ids[0], "priority")
        moved(uow, ids[1], "cancel")
        failed = finished(uow, single(priority=Priority.LOW), "failed")
        finished(uow, batch([(1, 1), (2, 2)]), "success")
        moved(uow, failed, "retry")
        with uow.one_write():
            assert uow.tasks.claim(ids[2], 1, NOW, LEASE) is not None
            uow.commit()
        counts = counted(uow)
        assert counts == real_counts(uow)
        assert counts[(TaskStatus.RUNNING, Priority.HIGH, TaskType.BATCH)] == 1
        assert counts[(TaskStatus.QUEUED, Priority.HIGH, TaskType.SINGLE)] == 1
        assert sum(counts.values()) == 5

    def test_counts_keep_nothing_of_a_rolled_back_write(self, uow: UnitOfWork) -> None:
        (task_id,) = added(uow, single())
        with uow:
            uow.tasks.add(single())
            task = uow.tasks.get(task_id)
            assert task is not None
            task.cancel(NOW)
            uow.tasks.save(task)
        assert counted(uow) == {(TaskStatus.QUEUED, Priority.MEDIUM, TaskType.SINGLE): 1}

    def test_folding_the_counts_changes_none_of_them(self, uow: UnitOfWork) -> None:
        ids = added(uow, *(single(priority=Priority(1 + i % 3)) for i in range(6)))
        for task_id in ids[:3]:
            moved(uow, task_id, "cancel")
        before = counted(uow)
        with uow:
            uow.tasks.fold_counts()
            uow.commit()
        assert counted(uow) == before == real_counts(uow)
        moved(uow, ids[3], "cancel")
        with uow:
            uow.tasks.fold_counts()
            uow.commit()
        assert counted(uow) == real_counts(uow)

    def test_the_page_total_comes_right_for_every_filter(self, uow: UnitOfWork) -> None:
        ids = added(uow, single(), single(priority=Priority.HIGH), batch([(1, 1)], Priority.LOW))
        moved(uow, ids[0], "cancel")
        filters = [
            TaskFilter(),
            TaskFilter(status=TaskStatus.CANCELLED),
            TaskFilter(status=TaskStatus.QUEUED, type=TaskType.BATCH),
            TaskFilter(priority=Priority.HIGH),
            TaskFilter(type=TaskType.SINGLE, priority=Priority.LOW),
        ]
        with uow:
            totals = [uow.tasks.page(f, 1, 0).total for f in filters]
        assert totals == [3, 1, 1, 1, 0]

    def test_keyset_pages_walk_every_match_once_newest_first(self, uow: UnitOfWork) -> None:
        ids = added(uow, *(single(i, i, Priority(1 + i % 2)) for i in range(7)))
        high = [task_id for i, task_id in enumerate(ids) if i % 2 == 0]
        walked: list[int] = []
        cursor: int | None = None
        with uow:
            while True:
                page = uow.tasks.page(TaskFilter(priority=Priority.HIGH), 3, 0, before_id=cursor)
                assert page.total == 4
                walked += [t.id for t in page.items if t.id is not None]
                if page.next_before_id is None:
                    break
                assert page.next_before_id == page.items[-1].id
                cursor = page.next_before_id
        assert walked == sorted(high, reverse=True)

    def test_a_page_that_ends_the_matches_has_no_cursor(self, uow: UnitOfWork) -> None:
        ids = added(uow, single(), single())
        with uow:
            exact = uow.tasks.page(TaskFilter(), 2, 0)
            below = uow.tasks.page(TaskFilter(), 5, 0, before_id=ids[1])
            offset_page = uow.tasks.page(TaskFilter(), 1, 0)
        assert exact.next_before_id is None and len(exact.items) == 2
        assert [t.id for t in below.items] == [ids[0]] and below.next_before_id is None
        assert offset_page.next_before_id == ids[1]

    def test_prune_deletes_the_oldest_finished_of_one_status_only(self, uow: UnitOfWork) -> None:
        old = [
            finished(uow, single(), "success", NOW - 3 * HOUR + timedelta(seconds=i))
            for i in range(3)
        ]
        recent = finished(uow, single(), "success", NOW)
        old_failed = finished(uow, single(), "failed", NOW - 3 * HOUR)
        (queued,) = added(uow, single(now=NOW - 5 * HOUR))
        with uow:
            assert uow.tasks.prune_finished(TaskStatus.SUCCESS, NOW - HOUR, 2) == 2
            uow.commit()
        remaining = {t.id for t in every_task(uow)}
        assert remaining == {old[2], recent, old_failed, queued}
        with uow:
            assert uow.tasks.prune_finished(TaskStatus.SUCCESS, NOW - HOUR, 2) == 1
            assert uow.tasks.prune_finished(TaskStatus.SUCCESS, NOW - HOUR, 2) == 0
            uow.commit()
        assert {t.id for t in every_task(uow)} == {recent, old_failed, queued}
        assert counted(uow) == real_counts(uow)
        assert stored(uow, recent).status is TaskStatus.SUCCESS

    def test_prune_keeps_nothing_without_commit(self, uow: UnitOfWork) -> None:
        finished(uow, single(), "success", NOW - HOUR)
        with uow:
            assert uow.tasks.prune_finished(TaskStatus.SUCCESS, NOW, 10) == 1
        assert len(every_task(uow)) == 1
        assert sum(counted(uow).values()) == 1

    @pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING])
    def test_prune_refuses_an_unfinished_status(self, uow: UnitOfWork, status: TaskStatus) -> None:
        with uow, pytest.raises(ValueError):
            uow.tasks.prune_finished(status, NOW, 10)

    def test_each_tenants_counts_and_totals_are_its_own(self, uow: UnitOfWork) -> None:
        tasks = [single(), single(priority=Priority.HIGH), batch([(1, 2)]), single()]
        for task, tenant in zip(tasks, ["acme", "acme", "globex", "default"], strict=True):
            task.tenant = tenant
        ids = added(uow, *tasks)
        moved(uow, ids[0], "cancel")
        with uow:
            uow.tasks.fold_counts()
            uow.commit()
        moved(uow, ids[1], "cancel")
        with uow:
            acme = uow.tasks.counts("acme")
            everyone = uow.tasks.counts()
            totals = {
                tenant: uow.tasks.page(TaskFilter(tenant=tenant), 1, 0).total
                for tenant in ("acme", "globex", "default", "initech")
            }
            acme_cancelled = uow.tasks.page(
                TaskFilter(tenant="acme", status=TaskStatus.CANCELLED), 1, 0
            ).total
        assert {key: n for key, n in acme.items() if n} == {
            (TaskStatus.CANCELLED, Priority.MEDIUM, TaskType.SINGLE): 1,
            (TaskStatus.CANCELLED, Priority.HIGH, TaskType.SINGLE): 1,
        }
        assert {key: n for key, n in everyone.items() if n} == real_counts(uow)
        assert totals == {"acme": 2, "globex": 1, "default": 1, "initech": 0}
        assert acme_cancelled == 2


class CreationWindowContract:
    """A list by creation time: `created_after <= created_at < created_before`, beside the other
    filters and the cursor. Subclass with a `uow` fixture holding an empty store."""

    def test_a_window_is_half_open_and_combines_with_filters_and_cursor(
        self, uow: UnitOfWork
    ) -> None:
        minutes = range(6)
        ids = added(
            uow, *(single(i, i, Priority(1 + i % 2), NOW + timedelta(minutes=i)) for i in minutes)
        )
        window = TaskFilter(
            created_after=NOW + timedelta(minutes=1), created_before=NOW + timedelta(minutes=4)
        )
        with uow:
            page = uow.tasks.page(window, 10, 0)
            high = uow.tasks.page(replace(window, priority=Priority.HIGH), 10, 0)
            first = uow.tasks.page(window, 2, 0)
            rest = uow.tasks.page(window, 2, 0, before_id=first.next_before_id)
            since = uow.tasks.page(TaskFilter(created_after=NOW + timedelta(minutes=5)), 10, 0)
        assert [t.id for t in page.items] == [ids[3], ids[2], ids[1]] and page.total == 3
        assert [t.id for t in high.items] == [ids[2]] and high.total == 1
        assert [t.id for t in first.items + rest.items] == [ids[3], ids[2], ids[1]]
        assert rest.next_before_id is None and first.total == rest.total == 3
        assert [t.id for t in since.items] == [ids[5]]

    def test_tasks_stored_out_of_creation_order_are_found_by_their_creation_time(
        self, uow: UnitOfWork
    ) -> None:
        """Ids follow the INSERTs, creation times the creators' clocks: two API processes can
        store a task created a few seconds earlier after a later one."""
        old, later, earlier, new = added(
            uow,
            single(now=NOW - HOUR),
            single(now=NOW + timedelta(seconds=5)),
            single(now=NOW + timedelta(seconds=3)),  # stored after, created before
            single(now=NOW + HOUR),
        )
        split = NOW + timedelta(seconds=4)
        with uow:
            from_split = uow.tasks.page(TaskFilter(created_after=split), 10, 0).items
            to_split = uow.tasks.page(TaskFilter(created_before=split), 10, 0).items
            inner = TaskFilter(created_after=NOW, created_before=NOW + timedelta(minutes=1))
            both = uow.tasks.page(inner, 10, 0).items
        assert [t.id for t in from_split] == [new, later]
        assert [t.id for t in to_split] == [earlier, old]
        assert [t.id for t in both] == [earlier, later]

    def test_a_window_to_the_ends_of_the_calendar_holds_every_task(self, uow: UnitOfWork) -> None:
        ids = added(uow, single(), single(now=NOW + HOUR))
        everything = TaskFilter(
            created_after=datetime.min.replace(tzinfo=UTC),
            created_before=datetime.max.replace(tzinfo=UTC),
        )
        with uow:
            page = uow.tasks.page(everything, 10, 0)
        assert [t.id for t in page.items] == ids[::-1] and page.total == 2

    def test_the_total_of_a_window_is_counted_if_the_window_holds_at_most_the_cap(
        self, uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(repository_port, "COUNT_CAP", 2)
        added(
            uow,
            *(single(now=NOW + timedelta(seconds=i)) for i in range(3)),
            single(priority=Priority.HIGH, now=NOW + timedelta(seconds=3)),
        )
        wide, narrow = NOW, NOW + timedelta(seconds=2)
        with uow:
            over = uow.tasks.page(TaskFilter(created_after=wide), 1, 0)
            few_of_many = uow.tasks.page(
                TaskFilter(priority=Priority.HIGH, created_after=wide), 1, 0
            )
            at_cap = uow.tasks.page(TaskFilter(created_after=narrow), 1, 0)
            one = uow.tasks.page(TaskFilter(priority=Priority.HIGH, created_after=narrow), 9, 0)
            unbounded = uow.tasks.page(TaskFilter(), 1, 0)  # the exact counts, never capped
        assert over.total is None and len(over.items) == 1 and over.next_before_id is not None
        assert few_of_many.total is None and len(few_of_many.items) == 1
        assert (at_cap.total, one.total, unbounded.total) == (2, 1, 4)

"""Every pair of concurrent writers of one task, on real connections and threads, on PostgreSQL
and SQLite: API moves (change priority, retry, cancel), a worker's claim and outcome, dispatcher
rounds. None of them may starve another: each finishes, none fails with a conflict, and no
attempt's outcome is thrown away because a legal move happened meanwhile.

Bounds here are loose (seconds where milliseconds are expected): they tell a writer that queues
behind others from one that never gets through, not fast from slow."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from adapters.arithmetic import ExactArithmetic
from adapters.clock import SystemClock
from adapters.sql import SqlUnitOfWork
from application.ports import Dispatch
from application.use_cases import (
    AttemptOutcome,
    CancelTask,
    ChangePriority,
    ChangePriorityRequest,
    DispatchDue,
    DispatchReport,
    ExecuteTask,
    ExecuteTaskRequest,
    RetryTask,
)
from domain.errors import IllegalTransition, PermanentTaskFailure
from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy
from domain.task import Pair, Task, TaskStatus, add_pairs
from tests.contract.repository_contract import added, single, stored
from tests.fakes import RecordingQueue
from tests.integration.test_sql_concurrency import lock_waiters
from tests.processes import wait_until

LEASE = timedelta(seconds=60)
RETRY = RetryPolicy(backoff_base=timedelta(seconds=1))
SCHEDULE = SchedulePolicy()
MEDIUM = SCHEDULE.delay_for(Priority.MEDIUM)
RECORDED, STALE = AttemptOutcome.RECORDED, AttemptOutcome.STALE_MESSAGE
# Far above what any of these takes when writers queue behind each other (well under a second),
# far below "never": a starved writer is only ever found by a bound like this one.
BOUND_SECONDS = 60
STORM = 300
STORM_THREADS = 24


@dataclass
class Store:
    engine: Engine
    uow: SqlUnitOfWork

    def new_uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    prefix = "pg" if request.param == "postgresql" else "sqlite"
    yield Store(
        request.getfixturevalue(f"{prefix}_engine"), request.getfixturevalue(f"{prefix}_uow")
    )


class HeldArithmetic:
    """The real sums, once `release` is set: the attempt is mid-work until then."""

    def __init__(self) -> None:
        self.working = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def sum_pairs(self, pairs: Sequence[Pair]) -> list[int]:
        self.calls += 1
        self.working.set()
        assert self.release.wait(BOUND_SECONDS), "the attempt was never released"
        return add_pairs(pairs)


def change_priority(
    store: Store, task_id: int, priority: Priority, queue: RecordingQueue | None = None
) -> Task:
    broker = RecordingQueue() if queue is None else queue
    use_case = ChangePriority(store.new_uow(), broker, SystemClock(), SCHEDULE)
    return use_case.execute(ChangePriorityRequest(task_id=task_id, priority=priority))


def answer(change: Future[Task]) -> str:
    try:
        task = change.result(timeout=BOUND_SECONDS)
    except IllegalTransition as error:
        return "refused: finished" if "can no longer change" in str(error) else repr(error)
    except Exception as error:  # what it was is the answer: the assertion shows it
        return repr(error)
    return "moved" if task.priority is Priority.HIGH else f"moved to {task.priority}"


def test_a_storm_of_priority_changes_during_an_attempt_keeps_its_outcome(store: Store) -> None:
    """The issue's scenario: a priority-3 task running, hundreds of PUTs priority=1 meanwhile."""
    (task_id,) = added(store.uow, single(2, 5, Priority.LOW))
    arithmetic = HeldArithmetic()
    attempt = ExecuteTask(store.new_uow(), SystemClock(), arithmetic, RETRY, LEASE)
    done = threading.Semaphore(0)

    def one_change() -> Task:
        try:
            return change_priority(store, task_id, Priority.HIGH)
        finally:
            done.release()

    with ThreadPoolExecutor(1) as worker, ThreadPoolExecutor(STORM_THREADS) as api:
        outcome = worker.submit(attempt.execute, ExecuteTaskRequest(task_id, 1))
        assert arithmetic.working.wait(BOUND_SECONDS)  # claimed: the task is running
        changes = [api.submit(one_change) for _ in range(STORM)]
        for _ in range(STORM // 10):  # the storm is under way when the outcome is written
            assert done.acquire(timeout=BOUND_SECONDS)
        arithmetic.release.set()
        outcome.result(timeout=BOUND_SECONDS)
        answers = [answer(change) for change in changes]

    task = stored(store.uow, task_id)
    assert (task.status, task.result, task.attempts, task.priority) == (
        TaskStatus.SUCCESS,
        7,
        1,
        Priority.HIGH,
    )
    assert arithmetic.calls == 1
    # Each PUT either recorded the priority or, once the task had succeeded, was refused as the
    # state machine says (409); none failed on a conflict.
    assert set(answers) <= {"moved", "refused: finished"}, answers
    assert answers.count("moved") >= STORM // 10


def is_postgres(store: Store) -> bool:
    return store.engine.dialect.name == "postgresql"


def test_an_outcome_behind_a_priority_change_in_flight_waits_then_keeps_it(store: Store) -> None:
    (task_id,) = added(store.uow, single(2, 5, Priority.LOW))
    arithmetic = HeldArithmetic()
    attempt = ExecuteTask(store.new_uow(), SystemClock(), arithmetic, RETRY, LEASE)
    mover = store.new_uow()
    with ThreadPoolExecutor(1) as worker:
        outcome = worker.submit(attempt.execute, ExecuteTaskRequest(task_id, 1))
        assert arithmetic.working.wait(BOUND_SECONDS)
        with mover:
            task = mover.tasks.get_for_update(task_id)
            assert task is not None
            task.change_priority(Priority.HIGH, SystemClock().now(), SCHEDULE)
            mover.tasks.save(task)
            arithmetic.release.set()
            if is_postgres(store):  # SQLite's writer waits in its busy handler, unseen
                wait_until(lambda: lock_waiters(store.engine) == 1, 10, what="the outcome")
            mover.commit()
        done = outcome.result(timeout=BOUND_SECONDS)
    assert done.outcome is AttemptOutcome.RECORDED
    assert done.task is not None and done.task.priority is Priority.HIGH
    back = stored(store.uow, task_id)
    assert (back.status, back.result, back.attempts, back.priority) == (
        TaskStatus.SUCCESS,
        7,
        1,
        Priority.HIGH,
    )


RACES = 40


@pytest.mark.parametrize("move", ["change priority", "cancel"])
def test_claims_racing_moves_on_queued_tasks_end_one_way_or_the_other(
    store: Store, move: str
) -> None:
    ids = added(store.uow, *(single(i, 1) for i in range(RACES)))
    start = threading.Barrier(2)

    def claim(task_id: int) -> AttemptOutcome:
        attempt = ExecuteTask(store.new_uow(), SystemClock(), ExactArithmetic(), RETRY, LEASE)
        start.wait(BOUND_SECONDS)
        return attempt.execute(ExecuteTaskRequest(task_id, 1)).outcome

    def api_move(task_id: int) -> str:
        start.wait(BOUND_SECONDS)
        try:
            if move == "cancel":
                CancelTask(store.new_uow(), SystemClock()).execute(task_id)
            else:
                change_priority(store, task_id, Priority.HIGH)
        except IllegalTransition:
            return "refused"
        return "moved"

    with ThreadPoolExecutor(2) as pool:
        for task_id in ids:
            claimed, moved = pool.submit(claim, task_id), pool.submit(api_move, task_id)
            race = (claimed.result(BOUND_SECONDS), moved.result(BOUND_SECONDS))
            task = stored(store.uow, task_id)
            if move == "cancel":
                # Whichever wrote first wins; the other is refused by the rules, not a conflict.
                assert (race, task.status) in {
                    ((RECORDED, "refused"), TaskStatus.SUCCESS),
                    ((STALE, "moved"), TaskStatus.CANCELLED),
                }
            else:
                # Moved before the claim: re-dispatched, the old message stale. Moved while the
                # attempt ran: recorded, and kept by the outcome. Moved after the outcome:
                # refused by the rules (a finished task's priority no longer changes).
                assert (*race, task.status, task.dispatch_no, task.priority) in {
                    (STALE, "moved", TaskStatus.QUEUED, 2, Priority.HIGH),
                    (RECORDED, "moved", TaskStatus.SUCCESS, 1, Priority.HIGH),
                    (RECORDED, "refused", TaskStatus.SUCCESS, 1, Priority.MEDIUM),
                }


def test_a_move_holding_a_row_never_makes_a_dispatcher_round_wait(
    pg_engine: Engine, pg_uow: SqlUnitOfWork
) -> None:
    ids = added(pg_uow, *(single(i, 1, now=SystemClock().now() - 2 * MEDIUM) for i in range(5)))
    queue = RecordingQueue()
    dispatcher = DispatchDue(pg_uow, queue, SystemClock(), 100, timedelta(seconds=60))
    mover = SqlUnitOfWork(pg_engine)
    with ThreadPoolExecutor(1) as pool, mover:
        assert mover.tasks.get_for_update(ids[0]) is not None  # an API move, mid-way
        report = pool.submit(dispatcher.execute).result(timeout=BOUND_SECONDS)
        assert report.published == 4
        assert ids[0] not in {d.task_id for d in queue.published}
    assert dispatcher.execute().published == 1  # the next round, once the move is done
    assert {d.task_id for d in queue.published} == set(ids)


def test_a_move_behind_a_dispatcher_round_waits_then_applies_on_top_of_it(
    pg_engine: Engine, pg_uow: SqlUnitOfWork
) -> None:
    (task_id,) = added(pg_uow, single(now=SystemClock().now() - 2 * MEDIUM))
    dispatcher = SqlUnitOfWork(pg_engine)
    with ThreadPoolExecutor(1) as pool, dispatcher:
        (due,) = dispatcher.tasks.due_for_dispatch(SystemClock().now(), 10)
        assert dispatcher.tasks.save_published([due], SystemClock().now()) == [due]
        move = pool.submit(change_priority, Store(pg_engine, pg_uow), task_id, Priority.HIGH)
        wait_until(lambda: lock_waiters(pg_engine) == 1, 10, what="the move to wait")
        dispatcher.commit()
        moved = move.result(timeout=BOUND_SECONDS)
    # Applied to the published row: a new dispatch, so the round's message is now stale; due at
    # once, the new dispatch is then published and recorded (version 3).
    assert (moved.priority, moved.dispatch_no, moved.version) == (Priority.HIGH, 2, 3)
    assert stored(pg_uow, task_id).dispatch_no == 2


@pytest.mark.parametrize("first", ["lease expiry", "outcome"])
def test_an_outcome_and_a_lease_expiry_round_one_wins_the_other_gives_way(
    pg_engine: Engine, pg_uow: SqlUnitOfWork, first: str
) -> None:
    (task_id,) = added(pg_uow, single(2, 5))
    with pg_uow.one_write():
        claimed = pg_uow.tasks.claim(task_id, 1, SystemClock().now() - 2 * LEASE, LEASE)
        pg_uow.commit()
    assert claimed is not None
    claimed.complete(1, [7], SystemClock().now())
    dispatcher = SqlUnitOfWork(pg_engine)

    def record() -> Task | None:
        with SqlUnitOfWork(pg_engine) as worker:
            recorded = worker.tasks.record_outcome(claimed, 1)
            worker.commit()
        return recorded

    with ThreadPoolExecutor(1) as pool, dispatcher:
        if first == "outcome":
            assert pool.submit(record).result(timeout=BOUND_SECONDS) is not None
            assert dispatcher.tasks.expired_leases(SystemClock().now(), 10) == []
            expected = TaskStatus.SUCCESS
        else:
            (expired,) = dispatcher.tasks.expired_leases(SystemClock().now(), 10)
            outcome = pool.submit(record)
            wait_until(lambda: lock_waiters(pg_engine) == 1, 10, what="the outcome to wait")
            expired.expire_lease(SystemClock().now())
            dispatcher.tasks.save(expired)
            dispatcher.commit()
            assert outcome.result(timeout=BOUND_SECONDS) is None  # lost its claim: dropped
            expected = TaskStatus.QUEUED
    assert stored(pg_uow, task_id).status is expected


class SharedQueue(RecordingQueue):
    """The recording broker, safe for the dispatcher, the API and workers on several threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        with self._lock:
            super().publish(dispatches)

    def pending(self, priority: Priority) -> int:
        with self._lock:
            return super().pending(priority)

    def take_one(self) -> Dispatch | None:
        with self._lock:
            return self.waiting.pop(0) if self.waiting else None


def test_dispatcher_rounds_workers_and_a_storm_of_moves_all_get_through(store: Store) -> None:
    tasks, moves_each = 30, 10
    # Short delays, so a moved task falls due again within the test, and the dispatcher's
    # rounds keep meeting the moves' row locks.
    schedule = SchedulePolicy(
        {p: timedelta(milliseconds=20 * (p - 1)) for p in Priority}  # 0, 20, 40 ms
    )
    now = SystemClock().now()
    ids = added(
        store.uow,
        *(single(i, 1, Priority(1 + i % 3), now=now - timedelta(1)) for i in range(tasks)),
    )
    queue, stop = SharedQueue(), threading.Event()
    rounds: list[DispatchReport] = []

    def dispatcher() -> None:
        round_ = DispatchDue(store.new_uow(), queue, SystemClock(), 100, timedelta(seconds=60))
        while not stop.is_set():
            rounds.append(round_.execute())
            stop.wait(0.01)

    def worker() -> list[AttemptOutcome]:
        attempt = ExecuteTask(store.new_uow(), SystemClock(), ExactArithmetic(), RETRY, LEASE)
        outcomes = []
        while not stop.is_set():
            message = queue.take_one()
            if message is None:
                stop.wait(0.005)
                continue
            request = ExecuteTaskRequest(message.task_id, message.dispatch_no)
            outcomes.append(attempt.execute(request).outcome)
        return outcomes

    def move(n: int) -> str:
        task_id, priority = ids[n % tasks], Priority(1 + n % 3)
        use_case = ChangePriority(store.new_uow(), queue, SystemClock(), schedule)
        try:
            use_case.execute(ChangePriorityRequest(task_id=task_id, priority=priority))
        except IllegalTransition as error:
            return "refused: finished" if "can no longer change" in str(error) else repr(error)
        return "moved"

    def all_succeeded() -> bool:
        return all(stored(store.uow, i).status is TaskStatus.SUCCESS for i in ids)

    with ThreadPoolExecutor(3) as background, ThreadPoolExecutor(STORM_THREADS) as api:
        looping = [background.submit(dispatcher)] + [background.submit(worker) for _ in "ab"]
        answers = list(api.map(move, range(tasks * moves_each), timeout=BOUND_SECONDS))
        try:
            wait_until(all_succeeded, BOUND_SECONDS, what="every task to succeed")
        finally:
            stop.set()
        dispatched = looping[0].result(timeout=BOUND_SECONDS)
        worked = [o for w in looping[1:] for o in w.result(timeout=BOUND_SECONDS) or ()]

    assert dispatched is None and rounds  # every round returned: none raised
    assert set(answers) <= {"moved", "refused: finished"}, answers
    assert set(worked) <= {RECORDED, STALE}  # no claim lost, no outcome dropped
    assert worked.count(RECORDED) == tasks
    for n, task_id in enumerate(ids):
        task = stored(store.uow, task_id)
        assert (task.result, task.attempts) == (n + 1, 1)


def test_a_storm_of_mixed_moves_on_one_failed_task_queues_them_all_in_turn(store: Store) -> None:
    failed = single(1, 1)
    failed.claim(1, failed.created_at, LEASE)
    failed.fail_attempt(1, PermanentTaskFailure("no"), failed.created_at, RETRY)
    (task_id,) = added(store.uow, failed)
    queue, clock = SharedQueue(), SystemClock()
    acts = {
        "retry": lambda: RetryTask(store.new_uow(), queue, clock, SCHEDULE).execute(task_id),
        "cancel": lambda: CancelTask(store.new_uow(), clock).execute(task_id),
        "priority": lambda: change_priority(store, task_id, Priority.HIGH, queue),
    }

    def act(n: int) -> tuple[str, str]:
        name = list(acts)[n % 3]
        try:
            acts[name]()
        except IllegalTransition:
            return name, "refused"
        return name, "done"

    with ThreadPoolExecutor(STORM_THREADS) as api:
        answers = list(api.map(act, range(STORM), timeout=BOUND_SECONDS))

    # Every one was applied or refused by the state machine, in some order: the first retry
    # makes it queued, the first cancel after it ends it, and from then on only refusals.
    assert ("retry", "done") in answers and ("cancel", "done") in answers
    assert answers.count(("retry", "done")) == 1 and answers.count(("cancel", "done")) == 1
    task = stored(store.uow, task_id)
    assert task.status is TaskStatus.CANCELLED
    # One write per move done, plus one per publication recorded: a priority change that lands
    # after the retry and makes the task due publishes it (a write of its own, after the send;
    # none if a cancel came first), so each message published may add one.
    moves_done = answers.count(("priority", "done")) + 2
    assert moves_done <= task.version <= moves_done + len(queue.published)

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

from adapters.clock import SystemClock
from adapters.sql import SqlUnitOfWork
from application.use_cases import (
    ChangePriority,
    ChangePriorityRequest,
    ExecuteTask,
    ExecuteTaskRequest,
)
from domain.errors import IllegalTransition
from domain.priority import Priority, SchedulePolicy
from domain.retry import RetryPolicy
from domain.task import Pair, Task, TaskStatus, add_pairs
from tests.contract.repository_contract import added, single, stored
from tests.fakes import RecordingQueue

LEASE = timedelta(seconds=60)
RETRY = RetryPolicy(max_attempts=3, backoff_base=timedelta(seconds=1))
SCHEDULE = SchedulePolicy()
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


def change_priority(store: Store, task_id: int, priority: Priority) -> Task:
    use_case = ChangePriority(store.new_uow(), RecordingQueue(), SystemClock(), SCHEDULE)
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

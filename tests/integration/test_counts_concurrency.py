"""Exact counts under concurrent writers: many threads create, claim, finish, re-prioritise,
retry, cancel, prune and fold at once on real connections; then every counter equals count(*)."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from adapters.sql import SqlUnitOfWork
from domain.priority import Priority
from domain.task import Task, TaskStatus
from tests.contract.repository_contract import LEASE, NOW, RETRY, SCHEDULE, batch, single
from tests.fakes import transient

THREADS = 8
STEPS = 60
FAR_FUTURE = NOW + timedelta(days=1)
FINISHED = (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED)


def real_counts(engine: Engine) -> dict[tuple[str, int, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, priority, type, count(*) FROM tasks GROUP BY 1, 2, 3")
        )
        return {(s, p, t): n for s, p, t, n in rows}


def counters(engine: Engine) -> dict[tuple[str, int, str], int]:
    with SqlUnitOfWork(engine, read_only=True) as uow:
        return {(s.value, int(p), t.value): n for (s, p, t), n in uow.tasks.counts().items() if n}


def worker(engine: Engine, seed: int) -> Counter[str]:
    """Random moves; answers how many of each kind really changed something."""
    rng = random.Random(seed)
    uow = SqlUnitOfWork(engine)
    moves: Counter[str] = Counter()

    def some_id(status: str | None = None) -> int:
        # A task of the status the move needs, if there is one (else any id: a move that
        # finds nothing to do is part of the mix too).
        where = f"WHERE status = '{status}'" if status else ""
        with engine.connect() as connection:
            picked = connection.execute(
                text(f"SELECT id FROM tasks {where} ORDER BY random() LIMIT 1")
            ).scalar()
        return int(picked or 1)

    def move(task_id: int, act: str) -> bool:
        with uow:
            task = uow.tasks.get_for_update(task_id)
            if task is None:
                return False
            if act == "priority" and task.status not in (TaskStatus.SUCCESS, TaskStatus.CANCELLED):
                task.change_priority(Priority(rng.randint(1, 3)), NOW, SCHEDULE)
            elif act == "retry" and task.status is TaskStatus.FAILED:
                task.retry(NOW, SCHEDULE)
            elif act == "cancel" and task.status is TaskStatus.QUEUED:
                task.cancel(NOW)
            else:
                return False
            uow.tasks.save(task)
            uow.commit()
            return True

    def run_once(task_id: int) -> str | None:
        with uow:
            current = uow.tasks.get(task_id)
        if current is None or current.status is not TaskStatus.QUEUED:
            return None
        with uow.one_write():
            claimed = uow.tasks.claim(task_id, current.dispatch_no, NOW, LEASE)
            uow.commit()
        if claimed is None:
            return None
        if rng.random() < 0.2:  # some stay running
            return "claim"
        claim = claimed.dispatch_no  # a retry's requeue moves the task to the next one
        if rng.random() < 0.6:
            claimed.complete(claim, [0] * len(claimed.operands), NOW)
        else:
            claimed.fail_attempt(claim, transient("boom"), NOW, RETRY)
        with uow:
            recorded = uow.tasks.record_outcome(claimed, claim)
            uow.commit()
        return None if recorded is None else f"outcome {recorded.status.value}"

    for _ in range(STEPS):
        act = rng.choice(["create", "create", "run", "run", "priority", "retry", "cancel", "prune"])
        if act == "create":
            tasks: list[Task] = [
                single(priority=Priority(rng.randint(1, 3)))
                if rng.random() < 0.7
                else batch([(1, 2), (3, 4)], Priority(rng.randint(1, 3)))
                for _ in range(rng.randint(1, 4))
            ]
            for task in tasks:
                task.max_attempts = rng.randint(1, 2)
            with uow:
                uow.tasks.add_all(tasks)
                uow.commit()
            moves["create"] += 1
        elif act == "run":
            ran = run_once(some_id("queued"))
            if ran is not None:
                moves[ran] += 1
        elif act == "prune":
            with uow:
                pruned = uow.tasks.prune_finished(
                    rng.choice(FINISHED), FAR_FUTURE, rng.randint(1, 3)
                )
                uow.commit()
            with uow:
                uow.tasks.fold_counts()
                uow.commit()
            moves["prune"] += pruned > 0
        elif move(some_id({"retry": "failed", "cancel": "queued"}.get(act)), act):
            moves[act] += 1
    return moves


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_after_parallel_moves_every_counter_equals_count_star(
    store: str, request: pytest.FixtureRequest
) -> None:
    prefix = "pg" if store == "postgresql" else "sqlite"
    request.getfixturevalue(f"{prefix}_uow")  # empties the tables
    engine: Engine = request.getfixturevalue(f"{prefix}_engine")
    with ThreadPoolExecutor(THREADS) as pool:
        done = sum(pool.map(lambda seed: worker(engine, seed), range(THREADS)), Counter[str]())
    # Every kind of move really happened, side by side.
    assert set(done) == {
        "create",
        "claim",
        "outcome success",
        "outcome failed",
        "outcome queued",
        "priority",
        "retry",
        "cancel",
        "prune",
    }, done
    real = real_counts(engine)
    assert counters(engine) == real
    with SqlUnitOfWork(engine) as uow:
        uow.tasks.fold_counts()
        uow.commit()
    assert counters(engine) == real

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from application.use_cases import (
    CancelTask,
    ChangePriority,
    CheckHealth,
    CreateBatch,
    CreateTask,
    DispatchDue,
    ExecuteTask,
    ExecuteTaskRequest,
    ExecuteTaskResult,
    GetTask,
    ListTasks,
    RetryTask,
)
from domain.priority import SchedulePolicy
from domain.retry import RetryPolicy
from tests.fakes import (
    FakeClock,
    FakeMetrics,
    FakeUnitOfWork,
    RecordingQueue,
    ScriptedArithmetic,
)

LEASE = timedelta(seconds=30)
LOST_AFTER = timedelta(seconds=60)


@dataclass
class Core:
    """The core wired in-process with fakes: no server, no broker, no database."""

    uow: FakeUnitOfWork = field(default_factory=FakeUnitOfWork)
    queue: RecordingQueue = field(default_factory=RecordingQueue)
    clock: FakeClock = field(default_factory=FakeClock)
    arithmetic: ScriptedArithmetic = field(default_factory=ScriptedArithmetic)
    schedule: SchedulePolicy = field(default_factory=SchedulePolicy)
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            backoff_base=timedelta(seconds=1), jitter=0.5, random=lambda: 0.5
        )
    )
    max_pairs: int = 1000
    max_attempts: int = 3
    metrics: FakeMetrics = field(default_factory=FakeMetrics)

    def __post_init__(self) -> None:
        u, q, c, m = self.uow, self.queue, self.clock, self.metrics
        self.create_task = CreateTask(u, q, c, self.schedule, self.max_attempts, metrics=m)
        self.create_batch = CreateBatch(
            u, q, c, self.schedule, self.max_attempts, self.max_pairs, metrics=m
        )
        self.get_task = GetTask(u)
        self.list_tasks = ListTasks(u)
        self.change_priority = ChangePriority(u, q, c, self.schedule)
        self.retry_task = RetryTask(u, q, c, self.schedule)
        self.cancel_task = CancelTask(u, c)
        self.execute_task = ExecuteTask(u, c, self.arithmetic, self.retry, LEASE, m)
        self.dispatch_due = DispatchDue(u, q, c, batch_size=100, lost_after=LOST_AFTER)
        self.check_health = CheckHealth(u, q)

    def deliver(self) -> list[ExecuteTaskResult]:
        """Workers take every waiting message and run it."""
        return [
            self.execute_task.execute(ExecuteTaskRequest(d.task_id, d.dispatch_no, d.priority))
            for d in self.queue.take()
        ]

    def run_until_idle(self, step_seconds: float = 0.5, max_steps: int = 1000) -> None:
        """Let time pass, dispatching and delivering, until nothing is queued or running."""
        for _ in range(max_steps):
            self.dispatch_due.execute()
            self.deliver()
            if all(t.is_finished for t in self.uow.store.rows.values()):
                return
            self.clock.advance(step_seconds)
        raise AssertionError("tasks still pending")


@pytest.fixture
def core() -> Core:
    return Core()

"""What the use cases report to the Metrics port, on the fakes."""

from __future__ import annotations

from application.ports import AttemptResult
from application.use_cases import CreateBatchRequest, ExecuteTaskRequest
from domain.priority import Priority
from tests.fakes import transient
from tests.unit.conftest import Core
from tests.unit.test_use_cases import create


def test_created_tasks_are_counted_by_priority_and_type_once_committed(core: Core) -> None:
    create(core, priority=Priority.HIGH)
    core.create_batch.execute(CreateBatchRequest(pairs=[(1, 2), (3, 4)], priority=Priority.LOW))
    assert core.metrics.created == [(Priority.HIGH, "single"), (Priority.LOW, "batch")]


def test_an_attempt_reports_its_lateness_wait_and_run(core: Core) -> None:
    create(core, priority=Priority.MEDIUM)  # due 5 s after creation
    core.clock.advance(5.25)
    core.dispatch_due.execute()
    core.deliver()
    [(priority, lateness, wait, inversion)] = core.metrics.started
    assert (priority, lateness, wait, inversion) == (Priority.MEDIUM, 0.25, 5.25, False)
    assert core.metrics.finished == [(Priority.MEDIUM, AttemptResult.SUCCESS, 0.0)]


def test_retried_then_failed_attempts_and_a_dropped_message_are_told_apart(core: Core) -> None:
    core.arithmetic.failures = [transient(), transient(), transient()]
    task_id = create(core, priority=Priority.HIGH)
    core.run_until_idle()
    results = [result for _, result, _ in core.metrics.finished]
    assert results == [AttemptResult.RETRIED, AttemptResult.RETRIED, AttemptResult.FAILED]
    core.execute_task.execute(ExecuteTaskRequest(task_id, 1, Priority.HIGH))
    assert core.metrics.finished[-1] == (Priority.HIGH, AttemptResult.STALE_DROPPED, 0.0)


def test_an_attempt_started_while_a_higher_priority_task_waits_is_an_inversion(
    core: Core,
) -> None:
    create(core, priority=Priority.LOW)
    core.clock.advance(10)
    core.dispatch_due.execute()
    create(core, priority=Priority.HIGH)  # published at once, not yet taken
    core.clock.advance(0.101)
    low_message = [d for d in core.queue.take() if d.priority is Priority.LOW]
    core.execute_task.execute(ExecuteTaskRequest(low_message[0].task_id, 1, Priority.LOW))
    assert [(p, inverted) for p, _, _, inverted in core.metrics.started] == [(Priority.LOW, True)]


def test_a_higher_priority_task_due_for_under_100_ms_is_no_inversion(core: Core) -> None:
    create(core, priority=Priority.LOW)
    core.clock.advance(10)
    core.dispatch_due.execute()
    create(core, priority=Priority.HIGH)
    core.clock.advance(0.099)
    core.deliver()  # the low task first (published first), then the high one
    assert [(p, inverted) for p, _, _, inverted in core.metrics.started] == [
        (Priority.LOW, False),
        (Priority.HIGH, False),
    ]

"""application/publication.py: a task is published only once committed, and its publication is
committed only once the broker took its message; a failure of either leaves it to the
dispatcher."""

from __future__ import annotations

from collections.abc import Sequence

from application.ports import Dispatch
from application.publication import publish_committed
from application.use_cases import ChangePriorityRequest, CreateTaskRequest
from domain.priority import Priority
from domain.task import Task, TaskStatus
from tests.fakes import FakeUnitOfWork, RecordingQueue
from tests.unit.conftest import Core


class _SeesTheStore(RecordingQueue):
    """A broker that notes, for each message it takes, the task as the store then holds it."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        super().__init__()
        self.uow = uow
        self.seen: list[Task | None] = []

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        rows = self.uow.store.rows
        self.seen += [rows.get(d.task_id) for d in dispatches]
        super().publish(dispatches)


def test_a_message_is_published_for_a_committed_row_not_yet_marked_published(core: Core) -> None:
    queue = _SeesTheStore(core.uow)
    core.queue = queue
    core.__post_init__()  # the use cases on this queue

    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.HIGH))

    (seen,) = queue.seen
    assert seen is not None and seen.status is TaskStatus.QUEUED  # a worker can claim it
    assert seen.published_at is None  # nothing was marked before the broker took it
    assert isinstance(task, Task) and task.id is not None
    assert core.uow.stored(task.id).published_at == core.clock.now()


def test_while_the_broker_is_down_a_create_writes_once_and_never_marks_the_task_published(
    core: Core,
) -> None:
    core.queue.available = False
    commits = core.uow.commits

    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.HIGH))

    assert isinstance(task, Task) and task.id is not None
    assert core.uow.commits == commits + 1  # the insert; no second write undoes anything
    assert core.uow.stored(task.id).published_at is None
    core.queue.available = True
    assert core.dispatch_due.execute().published == 1
    assert core.queue.published == [Dispatch(task.id, 1, Priority.HIGH)]


def test_publish_committed_publishes_and_records_only_the_tasks_that_should_be(
    core: Core,
) -> None:
    now = core.clock.now()
    ids = [
        core.create_task.execute(CreateTaskRequest(a=i, b=1, priority=Priority.LOW)).id
        for i in range(3)
    ]
    assert all(task_id is not None for task_id in ids)
    core.clock.advance(10)  # every one is due now
    tasks = [core.uow.stored(task_id or 0) for task_id in ids]
    core.change_priority.execute(ChangePriorityRequest(task_id=ids[1] or 0, priority=Priority.LOW))
    core.queue.published.clear()

    assert publish_committed(core.uow, core.queue, core.clock, tasks) == 2

    # The one moved since it was read (dispatch 2 now, not due yet) is neither recorded nor
    # published: a message for its dispatch 1 would only be dropped as stale.
    assert [d.task_id for d in core.queue.published] == [ids[0], ids[2]]
    stored = [core.uow.stored(task_id or 0) for task_id in ids]
    assert [t.published_at for t in stored] == [core.clock.now(), None, core.clock.now()]
    assert stored[1].dispatch_no == 2
    assert now < core.clock.now()


def test_publish_committed_with_the_broker_down_records_nothing_and_does_not_raise(
    core: Core,
) -> None:
    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.LOW))
    assert isinstance(task, Task) and task.id is not None
    core.clock.advance(10)
    core.queue.available = False

    assert publish_committed(core.uow, core.queue, core.clock, [task]) == 0

    assert core.uow.stored(task.id).published_at is None
    core.queue.available = True
    assert core.dispatch_due.execute().published == 1


def test_publish_committed_with_the_store_down_at_its_commit_leaves_it_to_the_dispatcher(
    core: Core,
) -> None:
    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.LOW))
    assert isinstance(task, Task) and task.id is not None
    core.clock.advance(10)

    class _StoreFailsOnPublish(RecordingQueue):
        def publish(self, dispatches: Sequence[Dispatch]) -> None:
            super().publish(dispatches)
            core.uow.available = False

    queue = _StoreFailsOnPublish()
    assert publish_committed(core.uow, queue, core.clock, [task]) == 0  # not recorded

    core.uow.available = True
    assert queue.published == [Dispatch(task.id, 1, Priority.LOW)]
    assert core.uow.stored(task.id).published_at is None
    # Published again by the dispatcher: a duplicate, which the claim makes harmless.
    assert core.dispatch_due.execute().published == 1
    core.deliver()
    assert core.uow.stored(task.id).result == 3


def test_the_dispatcher_records_nothing_when_the_broker_is_down(core: Core) -> None:
    task = core.create_task.execute(CreateTaskRequest(a=1, b=2, priority=Priority.LOW))
    assert isinstance(task, Task) and task.id is not None
    core.clock.advance(10)
    core.queue.available = False
    commits = core.uow.commits

    report = core.dispatch_due.execute()

    assert not report.broker_available and report.published == 0
    assert core.uow.stored(task.id).published_at is None
    assert core.uow.commits - commits <= 1  # the lease sweep's; the publication rolled back

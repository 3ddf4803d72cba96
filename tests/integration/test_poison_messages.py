"""A message that is not a valid taskman message never stops a worker: on Redis and on the
embedded filesystem broker, each kind of poison is set aside (`<queue>.rejected`, or the broker
folder's `rejected/`), logged once with its queue and reason, and the next priority-1 task runs
at once. A worker that does meet an unrecoverable error exits non-zero."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection

from adapters.broker.redis_transport import TRANSPORT as REDIS_TRANSPORT
from application.ports import Dispatch
from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import CeleryStack, celery_stack, redis_database
from tests.poisons import MESSAGE_MAX_BYTES, POISONS, raw, valid_message
from tests.processes import ManagedProcess, wait_until

pytestmark = pytest.mark.integration

REJECTED_MAX = 5
SETTINGS = {
    # One pool process, warmed up by a first task (see `warm`): the 1 s below is then the
    # worker's, not that of a pool process's first connection to PostgreSQL.
    "WORKER_CONCURRENCY": "1",
    "REJECTED_MESSAGES_MAX": str(REJECTED_MAX),
    "BROKER_MESSAGE_MAX_BYTES": str(MESSAGE_MAX_BYTES),
}
# The expectation: once the poison is set aside, a priority-1 task is done within 1 s.
NEXT_TASK_SECONDS = 1.0
REJECTION_LINE = re.compile(r"^.*\[high\] rejected a message: .*$", re.MULTILINE)


def new_rejection_lines(worker: ManagedProcess, offset: int) -> list[str]:
    return REJECTION_LINE.findall(worker.log_text()[offset:])


def assert_next_high_task_runs(stack: CeleryStack, timeout: float = NEXT_TASK_SECONDS) -> None:
    task = stack.create(Priority.HIGH, a=20, b=22)
    assert task.id is not None
    (done,) = stack.wait_finished([task.id], timeout=timeout)
    assert done.status is TaskStatus.SUCCESS and done.result == 42


def warm(stack: CeleryStack, worker: ManagedProcess) -> ManagedProcess:
    assert_next_high_task_runs(stack, timeout=30)
    return worker


# ----- Redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    with celery_stack(tmp_path_factory.mktemp("poison-redis"), **SETTINGS) as stack:
        yield stack


@pytest.fixture
def redis_worker(redis_stack: CeleryStack) -> ManagedProcess:
    """The high worker, shared by the module's tests; started again if a test left it dead, so
    that each test shows its own poison's outcome."""
    for process in redis_stack.processes:
        if process.running:
            return process
    return warm(redis_stack, redis_stack.worker("high"))


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
def test_a_poison_message_on_redis_is_set_aside_and_the_worker_goes_on(
    redis_stack: CeleryStack, redis_worker: ManagedProcess, poison: str
) -> None:
    item, reason = POISONS[poison]
    client = redis_stack.redis()
    offset = len(redis_worker.log_text())

    client.lpush("high", item)

    wait_until(lambda: client.llen("high") == 0, 2, what="the worker takes the poison")
    assert_next_high_task_runs(redis_stack)
    assert redis_worker.running, redis_worker.log_tail()
    assert client.lindex("high.rejected", 0) == item
    (line,) = new_rejection_lines(redis_worker, offset)
    assert reason in line and len(line) < 300, line


def test_the_rejected_list_keeps_only_the_newest(
    redis_stack: CeleryStack, redis_worker: ManagedProcess
) -> None:
    client = redis_stack.redis()
    poisons = [f"junk {i}".encode() for i in range(REJECTED_MAX + 3)]
    offset = len(redis_worker.log_text())

    for poison in poisons:
        client.lpush("high", poison)

    wait_until(
        lambda: len(new_rejection_lines(redis_worker, offset)) == len(poisons),
        5,
        what="every poison rejected",
    )
    assert client.lrange("high.rejected", 0, -1) == poisons[::-1][:REJECTED_MAX]
    assert_next_high_task_runs(redis_stack)


def test_a_valid_message_still_runs(redis_stack: CeleryStack, redis_worker: ManagedProcess) -> None:
    """The screen lets through what taskman publishes, on both publish paths."""
    client = redis_stack.redis()
    client.delete("high.rejected")
    assert_next_high_task_runs(redis_stack)  # written onto Redis directly
    task = redis_stack.create(Priority.HIGH, a=1, b=1)
    assert task.id is not None
    redis_stack.container.queue()._send_tasks(  # and through kombu's producer
        [Dispatch(task.id, task.dispatch_no, Priority.HIGH)]
    )
    (done,) = redis_stack.wait_finished([task.id], timeout=5)
    assert done.status is TaskStatus.SUCCESS
    assert client.llen("high.rejected") == 0


def test_a_synchronous_get_skips_poison_too_and_keeps_the_key_prefix() -> None:
    """basic_get (kombu's RPOP path, beside the consumers' BRPOP) under a global key prefix:
    the poison is set aside, capped, and the valid message behind it is returned."""
    valid = raw(valid_message())
    with redis_database() as url, Connection(url, transport=REDIS_TRANSPORT) as connection:
        connection.transport_options.update(
            global_keyprefix="p:", task_queues=["high"], rejected_messages_max=2
        )
        client = redis.Redis.from_url(url)
        client.lpush("p:high", b"x", b"y", b"z", valid)

        message = connection.default_channel.basic_get("high", no_ack=True)

        assert message is not None and message.headers["task"] == "taskman.execute"
        assert client.lrange("p:high.rejected", 0, -1) == [b"z", b"y"]
        assert client.llen("p:high") == 0


# ----- the embedded filesystem broker ---------------------------------------------------------


@pytest.fixture(scope="module")
def filesystem_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    folder = tmp_path_factory.mktemp("poison-filesystem")
    broker = f"filesystem://localhost{folder / 'data' / 'broker'}"
    with celery_stack(folder, broker_url=broker, **SETTINGS) as stack:
        yield stack


@pytest.fixture
def filesystem_worker(filesystem_stack: CeleryStack) -> ManagedProcess:
    for process in filesystem_stack.processes:
        if process.running:
            return process
    return warm(filesystem_stack, filesystem_stack.worker("high"))


def broker_folder(stack: CeleryStack) -> Path:
    return Path(stack.broker_url.removeprefix("filesystem://localhost"))


FILE_POISONS = {
    name: POISONS[name]
    for name in (
        "not json",
        "a json list",
        "an empty object",
        "not utf-8",
        "unknown task",
        "string arguments",
        "bad base64",
        "oversized",
    )
}


@pytest.mark.parametrize("poison", FILE_POISONS, ids=list(FILE_POISONS))
def test_a_junk_file_in_the_embedded_broker_is_moved_aside_and_the_worker_goes_on(
    filesystem_stack: CeleryStack, filesystem_worker: ManagedProcess, poison: str
) -> None:
    content, reason = FILE_POISONS[poison]
    folder = broker_folder(filesystem_stack)
    offset = len(filesystem_worker.log_text())
    # Named as kombu names a message, so that the worker takes it; written aside then renamed
    # into place, as a producer does.
    name = f"1_{uuid.uuid4()}.high.msg"
    (folder / f"{name}.writing").write_bytes(content)
    (folder / f"{name}.writing").rename(folder / "messages" / name)

    wait_until(
        lambda: not (folder / "messages" / name).exists() or not filesystem_worker.running,
        2,
        what="the worker takes the junk file",
    )
    assert_next_high_task_runs(filesystem_stack)
    assert filesystem_worker.running, filesystem_worker.log_tail()
    set_aside = [path for path in (folder / "rejected").iterdir() if path.name.endswith(name)]
    assert [path.read_bytes() for path in set_aside] == [content]
    (line,) = new_rejection_lines(filesystem_worker, offset)
    assert reason in line and len(line) < 300, line


def test_the_rejected_folder_keeps_only_the_newest(
    filesystem_stack: CeleryStack, filesystem_worker: ManagedProcess
) -> None:
    folder = broker_folder(filesystem_stack)
    offset = len(filesystem_worker.log_text())
    for i in range(REJECTED_MAX + 3):
        (folder / "messages" / f"{i + 2}_{uuid.uuid4()}.high.msg").write_bytes(b"junk")

    wait_until(
        lambda: len(new_rejection_lines(filesystem_worker, offset)) == REJECTED_MAX + 3,
        5,
        what="every junk file rejected",
    )
    assert len(list((folder / "rejected").iterdir())) == REJECTED_MAX
    assert_next_high_task_runs(filesystem_stack)


# ----- an unrecoverable error -----------------------------------------------------------------


def test_a_worker_meeting_an_unrecoverable_error_exits_non_zero(tmp_path: Path) -> None:
    """The embedded broker's folder vanishing is no poison: the worker cannot go on, and says so
    with its exit status, so a supervisor (compose's restart policy, make run) sees a failure."""
    broker = f"filesystem://localhost{tmp_path / 'data' / 'broker'}"
    with celery_stack(tmp_path, broker_url=broker) as stack:
        worker = stack.worker("high")
        messages = tmp_path / "data" / "broker" / "messages"
        for path in messages.iterdir():
            path.unlink()
        messages.rmdir()
        messages.write_bytes(b"not a folder")  # listing it now fails, every time

        wait_until(lambda: not worker.running, 10, what="the worker exits")
        assert worker.stop() not in (0, None), worker.log_tail()


def test_a_stopped_worker_exits_zero(tmp_path: Path) -> None:
    with celery_stack(tmp_path) as stack:
        worker = stack.worker("high")
        assert worker.stop() == 0, worker.log_tail()

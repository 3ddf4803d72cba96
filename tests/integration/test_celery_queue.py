"""The task-queue port on Celery, against the real Redis (a database of the test's own, or a
redis-server of its own where it must go down) and kombu's filesystem transport, the embedded
default."""

from __future__ import annotations

import base64
import json
import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from adapters.broker import EXECUTE_TASK, CeleryTaskQueue, create_celery_app
from adapters.broker import queue as queue_module
from adapters.broker.filesystem import AtomicFilesystemTransport
from application.ports import Dispatch, QueueUnavailable
from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import OwnRedisServer, celery_stack, redis_database
from tests.processes import free_port, wait_until

pytestmark = pytest.mark.integration


def app_for(url: str) -> Celery:
    return create_celery_app(url, visibility_timeout_seconds=60)


@pytest.fixture
def broker_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


def test_a_message_is_the_task_id_and_dispatch_number_on_the_priority_queue(
    broker_url: str,
) -> None:
    CeleryTaskQueue(app_for(broker_url)).publish([Dispatch(42, 7, Priority.LOW)])

    (raw,) = redis.Redis.from_url(broker_url).lrange("low", 0, -1)
    message = json.loads(raw)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([42, 7], {})
    assert message["content-type"] == "application/json"
    assert message["headers"]["task"] == EXECUTE_TASK
    assert message["headers"]["eta"] is None  # never a countdown: delays live in the store


def test_a_list_of_dispatches_reaches_each_priority_queue(broker_url: str) -> None:
    queue = CeleryTaskQueue(app_for(broker_url))
    queue.publish(
        [Dispatch(n, 1, Priority.HIGH) for n in range(300)]
        + [Dispatch(n, 1, Priority.MEDIUM) for n in range(200)]
        + [Dispatch(n, 1, Priority.LOW) for n in range(100)]
    )
    assert [queue.pending(p) for p in Priority] == [300, 200, 100]
    assert queue.pending(Priority.HIGH) == 300, "counting consumes nothing"


def test_messages_still_reach_their_queue_after_the_broker_is_wiped(broker_url: str) -> None:
    queue = CeleryTaskQueue(app_for(broker_url))
    queue.publish([Dispatch(1, 1, Priority.HIGH)])
    redis.Redis.from_url(broker_url).flushdb()  # bindings and queues gone

    queue.publish([Dispatch(1, 2, Priority.HIGH)])
    assert queue.pending(Priority.HIGH) == 1


def test_an_unreachable_broker_is_reported_as_unavailable() -> None:
    queue = CeleryTaskQueue(app_for(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(QueueUnavailable):
        queue.publish([Dispatch(1, 1, Priority.HIGH)])
    with pytest.raises(QueueUnavailable):
        queue.pending(Priority.HIGH)
    with pytest.raises(QueueUnavailable):
        queue.consumers()


def test_publishing_works_again_once_the_broker_is_back(tmp_path: Path) -> None:
    server = OwnRedisServer(tmp_path)
    server.start()
    try:
        queue = CeleryTaskQueue(app_for(server.url))
        queue.publish([Dispatch(1, 1, Priority.HIGH)])

        server.stop()
        with pytest.raises(QueueUnavailable):
            queue.publish([Dispatch(2, 1, Priority.HIGH)])

        server.start()  # empty: this Redis keeps nothing on disk
        queue.publish([Dispatch(3, 1, Priority.HIGH)])
        assert queue.pending(Priority.HIGH) == 1
    finally:
        server.stop()


def test_consumers_counts_the_workers_of_each_queue(tmp_path: Path) -> None:
    with celery_stack(tmp_path) as stack:
        queue = CeleryTaskQueue(stack.container.celery_app())
        assert queue.consumers() == dict.fromkeys(Priority, 0)

        stack.workers("high", "low", "high")
        # The same queue object: a short answer is never served from its cache. Polled, as a
        # worker on a loaded machine may miss one broadcast's short timeout.
        expected = {Priority.HIGH: 2, Priority.MEDIUM: 0, Priority.LOW: 1}
        wait_until(lambda: queue.consumers() == expected, 10, what="2 high, 1 low worker")


class _AnswersOnCue(CeleryTaskQueue):
    """The workers' answers are the test's, and each broadcast waits until the test lets it end:
    what a caller waits for is then plain to see."""

    def __init__(self, app: Celery) -> None:
        super().__init__(app)
        self.queues = ["high", "medium", "low"]
        self.answer = threading.Event()
        self.asked = 0

    def _ask_workers(self) -> dict[str, list[dict[str, Any]]] | None:
        self.asked += 1
        assert self.answer.wait(30), "the test never let the broadcast end"
        return {"pool@host": [{"name": name} for name in self.queues]}


def test_a_stale_full_count_is_served_while_the_workers_are_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = _AnswersOnCue(app_for(f"filesystem://localhost{tmp_path / 'broker'}"))
    queue.answer.set()
    full = dict.fromkeys(Priority, 1)
    assert queue.consumers() == full  # nothing cached: the caller waits for the answers

    monkeypatch.setattr(queue_module, "CONSUMERS_CACHE_SECONDS", 0.0)  # the count is stale now
    queue.answer.clear()
    queue.queues = ["high", "medium"]  # the low pool has stopped
    assert queue.consumers() == full, "served from the cache while the broadcast is unanswered"
    assert queue.consumers() == full
    wait_until(lambda: queue.asked == 2, 5, what="one refresh, started beside the callers")
    queue.answer.set()
    wait_until(lambda: queue.consumers()[Priority.LOW] == 0, 5, what="the refreshed count")

    # A short count is never served from the cache, nor a full one past the stale window.
    queue.queues = ["high", "medium", "low"]
    assert queue.consumers() == full
    monkeypatch.setattr(queue_module, "CONSUMERS_STALE_SECONDS", 0.0)
    queue.queues = ["high"]
    assert queue.consumers() == {Priority.HIGH: 1, Priority.MEDIUM: 0, Priority.LOW: 0}


def test_the_embedded_transport_publishes_and_counts(tmp_path: Path) -> None:
    queue = CeleryTaskQueue(app_for(f"filesystem://localhost{tmp_path / 'broker'}"))
    queue.publish([Dispatch(1, 1, Priority.MEDIUM), Dispatch(2, 1, Priority.MEDIUM)])

    assert queue.pending(Priority.MEDIUM) == 2
    assert queue.pending(Priority.LOW) == 0
    assert queue.consumers() == dict.fromkeys(Priority, 0)


def test_the_embedded_transport_writes_each_message_whole_before_it_is_visible(
    tmp_path: Path,
) -> None:
    app = app_for(f"filesystem://localhost{tmp_path / 'broker'}")
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, AtomicFilesystemTransport)
    CeleryTaskQueue(app).publish([Dispatch(7, 3, Priority.HIGH)])
    (message,) = (tmp_path / "broker" / "messages").iterdir()
    assert message.name.endswith(".high.msg")
    assert json.loads(message.read_text())["headers"]["argsrepr"] == "(7, 3)"


def test_a_worker_on_the_embedded_transport_runs_a_task(tmp_path: Path) -> None:
    embedded = f"filesystem://localhost{tmp_path / 'broker'}"
    with celery_stack(tmp_path, broker_url=embedded) as stack:
        stack.worker("high")

        task = stack.create(Priority.HIGH, a=2, b=2)
        assert task.id is not None
        (done,) = stack.wait_finished([task.id], timeout=15)
        assert done.status is TaskStatus.SUCCESS and done.result == 4
        # The filesystem transport broadcasts too, so /health can count the workers.
        assert CeleryTaskQueue(stack.container.celery_app()).consumers() == {
            Priority.HIGH: 1,
            Priority.MEDIUM: 0,
            Priority.LOW: 0,
        }


def _drain(broker_url: str) -> list[str]:
    """One consumer process taking messages off the low queue until it is empty."""
    taken = []
    with app_for(broker_url).connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get("low", no_ack=True)) is not None:
            taken.append(message.headers["argsrepr"])
    return taken


def test_consumers_sharing_the_embedded_folder_take_each_message_once(tmp_path: Path) -> None:
    # Processes, not threads: kombu's own transport, moving messages across filesystems, was
    # seen handing one message to two of four consumer processes, and failing others.
    url = f"filesystem://localhost{tmp_path / 'broker'}"
    CeleryTaskQueue(app_for(url)).publish([Dispatch(i, 1, Priority.LOW) for i in range(300)])

    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as consumers:
        drained = [m for batch in consumers.map(_drain, [url] * 4) for m in batch]

    assert sorted(drained) == sorted(f"({i}, 1)" for i in range(300))
    assert list((tmp_path / "broker" / "messages").iterdir()) == []

"""The broker adapter on a Redis of the test's own (password-protected) whose server closes every
client connection (what Redis `timeout`, a proxy or a failover does; CLIENT KILL here): the
next publish, queue count and worker count re-establish their connection transparently; with
the server stopped, the error names host:port and the reason, never the password."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from adapters.broker import CeleryTaskQueue, create_celery_app
from adapters.broker.app import RECONNECT_INTERVAL_MAX_SECONDS
from application.ports import Dispatch, QueueUnavailable
from domain.priority import Priority
from tests.integration.celery_stack import OwnRedisServer, celery_stack
from tests.processes import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.integration

PASSWORD = "pa55-never-shown"


class PasswordRedis:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        self.process = ManagedProcess(
            f"redis-{self.port}",
            [*argv, "--requirepass", PASSWORD, "--save", "", "--appendonly", "no"],
            env=os.environ,
            log_path=log_dir / f"redis-{self.port}.log",
        )
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process.start().wait_for_output(r"Ready to accept connections")

    def kill_clients(self) -> int:
        """Closes every normal client connection but this one's, as the server's own timeout
        would."""
        with redis.Redis(port=self.port, password=PASSWORD) as admin:
            return int(admin.client_kill_filter(_type="normal"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PasswordRedis]:
    server = PasswordRedis(tmp_path)
    server.start()
    yield server
    server.process.stop()


@pytest.fixture
def queue(server: PasswordRedis) -> CeleryTaskQueue:
    return CeleryTaskQueue(create_celery_app(server.url, visibility_timeout_seconds=3600))


def test_every_broker_call_survives_connections_the_server_closed(
    server: PasswordRedis, queue: CeleryTaskQueue
) -> None:
    assert queue.writes_redis_directly
    dispatch = Dispatch(task_id=7, dispatch_no=1, priority=Priority.HIGH)
    queue.publish([dispatch])
    queue.consumers()  # every pooled connection and channel has been used once
    for round_ in range(1, 4):
        assert server.kill_clients() >= 1
        queue.publish([dispatch])
        assert server.kill_clients() >= 1
        assert queue.pending(Priority.HIGH) == 1 + round_
        assert server.kill_clients() >= 1
        # No worker answers, so nothing is cached: the broadcast is sent every time.
        assert queue.consumers() == dict.fromkeys(Priority, 0)


def test_a_stopped_broker_is_named_by_host_port_and_reason_never_password(
    server: PasswordRedis, queue: CeleryTaskQueue
) -> None:
    queue.publish([Dispatch(task_id=1, dispatch_no=1, priority=Priority.LOW)])
    server.process.stop()
    calls = {
        "publish": lambda: queue.publish([Dispatch(1, 2, Priority.LOW)]),
        "pending": lambda: queue.pending(Priority.LOW),
        "consumers": queue.consumers,
    }
    for name, call in calls.items():
        with pytest.raises(QueueUnavailable) as raised:
            call()
        message = str(raised.value)
        assert message.startswith(f"127.0.0.1:{server.port}: "), (name, message)
        assert "refused" in message.lower(), (name, message)
        assert PASSWORD not in message, (name, message)
    server.start()
    # Its data went with it (no persistence): the point is that it answers again.
    wait_until(lambda: queue.pending(Priority.LOW) == 0, 10, what="the broker is back")


def test_a_worker_retries_the_broker_promptly_and_runs_tasks_once_it_is_back(
    tmp_path: Path,
) -> None:
    """kombu's own reconnect waits grow by 2 s per failed attempt (2, 4, 6, ... up to 30 s), so
    a worker whose first few attempts failed stayed off its queue long after the broker was
    back. taskman's wait from 0 s by 0.5 s to at most RECONNECT_INTERVAL_MAX_SECONDS."""
    server = OwnRedisServer(tmp_path)
    server.start()
    try:
        with celery_stack(tmp_path, broker_url=server.url) as stack:
            worker = stack.worker("high")
            server.stop()
            # Six failed attempts: 0 + 0.5 + 1 + 1.5 + 2 = 5 s of waits here, 2 + 4 + 6 + 8 + 10
            # = 30 s with kombu's defaults.
            wait_until(
                lambda: worker.log_text().count("Cannot connect to") >= 6,
                20,
                what="six failed reconnects",
            )
            # Celery's lines say "Trying again now", "... in 1.00 second", "... in 1.50 seconds".
            waits = [
                float(seconds or 0)
                for seconds in re.findall(
                    r"Trying again (?:now|in ([\d.]+) seconds?)", worker.log_text()
                )
            ]
            assert len(waits) >= 5, waits
            assert max(waits) <= RECONNECT_INTERVAL_MAX_SECONDS, waits
            server.start()  # empty: the worker must reconnect on its own
            task = stack.create(Priority.HIGH, a=20, b=22)  # published by the create
            assert task.id is not None
            (done,) = stack.wait_finished([task.id], timeout=20)
            assert done.result == 42
    finally:
        server.stop()


def test_an_ack_that_cannot_reach_redis_leaves_the_channel_free_to_consume(
    server: PasswordRedis,
) -> None:
    """With prefetch 1, a delivery kombu kept counting after its failed ack would stop the
    worker's consumption for good (adapters/broker/redis_transport.ReleasingQoS)."""
    app = create_celery_app(server.url, visibility_timeout_seconds=3600)
    CeleryTaskQueue(app).publish([Dispatch(task_id=1, dispatch_no=1, priority=Priority.HIGH)])
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        channel.basic_qos(0, 1, False)
        message = channel.basic_get("high", no_ack=False)
        assert message is not None
        assert not channel.qos.can_consume(), "one delivery in flight: the prefetch is full"
        server.process.stop()
        with pytest.raises(redis.ConnectionError):
            message.ack()
        assert channel.qos.can_consume(), "the failed ack still freed the prefetch"

"""The broker adapter on a Redis of the test's own (password-protected) whose server closes every
client connection (what Redis `timeout`, a proxy or a failover does; CLIENT KILL here): the
next publish, queue count and worker count re-establish their connection transparently; with
the server stopped, the error names host:port and the reason, never the password."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from adapters.broker import CeleryTaskQueue, create_celery_app
from application.ports import Dispatch, QueueUnavailable
from domain.priority import Priority
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

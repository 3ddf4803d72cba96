"""The Redis publisher (adapters/broker/redis_publisher.py) writes what Celery's send_task writes
through kombu, and a real Celery worker runs what it writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.broker import CeleryTaskQueue, create_celery_app
from adapters.broker.redis_publisher import supports
from application.ports import Dispatch
from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import celery_stack, executions, redis_database
from tests.processes import wait_until

pytestmark = pytest.mark.integration

# What differs from one message to the next, even for the same dispatch.
PER_MESSAGE = {
    ("headers", "id"),
    ("headers", "root_id"),
    ("properties", "correlation_id"),
    ("properties", "delivery_tag"),
}


@pytest.fixture
def broker_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def queue(broker_url: str) -> CeleryTaskQueue:
    queue = CeleryTaskQueue(create_celery_app(broker_url, visibility_timeout_seconds=3600))
    assert queue.writes_redis_directly
    return queue


def _send_task_and_direct(
    queue: CeleryTaskQueue, broker_url: str, dispatches: list[Dispatch]
) -> list[tuple[bytes, bytes]]:
    """Each dispatch published by kombu (send_task) then directly: the raw pairs, oldest
    first, with every queue it touched emptied again."""
    client = redis.Redis.from_url(broker_url)
    queue._send_tasks(dispatches)
    by_kombu = _take_all(client)
    queue.publish(dispatches)
    direct = _take_all(client)
    assert len(by_kombu) == len(direct) == len(dispatches)
    return list(zip(by_kombu, direct, strict=True))


def _take_all(client: redis.Redis) -> list[bytes]:
    """Every message on the priority queues, oldest (next consumed) first, and nothing else in
    the database: kombu wrote no binding, no other key."""
    assert set(client.keys("*")) <= {p.queue_name.encode() for p in Priority}
    taken: list[bytes] = []
    for priority in Priority:
        taken += reversed(client.lrange(priority.queue_name, 0, -1))
        client.delete(priority.queue_name)
    return taken


def _fields(envelope: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    fields: dict[tuple[str, ...], Any] = {}
    for key, value in envelope.items():
        if isinstance(value, dict) and value:
            fields |= _fields(value, (*prefix, key))
        else:
            fields[(*prefix, key)] = value
    return fields


def test_the_envelope_is_field_for_field_the_one_send_task_writes(
    queue: CeleryTaskQueue, broker_url: str
) -> None:
    dispatches = [
        Dispatch(42, 7, Priority.HIGH),
        Dispatch(2**62, 1, Priority.MEDIUM),
        Dispatch(3, 12, Priority.LOW),
    ]
    for (by_kombu, direct), dispatch in zip(
        _send_task_and_direct(queue, broker_url, dispatches), dispatches, strict=True
    ):
        expected, actual = json.loads(by_kombu), json.loads(direct)
        expected_fields, actual_fields = _fields(expected), _fields(actual)
        assert list(actual_fields) == list(expected_fields), "same fields, in the same order"
        for field, value in expected_fields.items():
            if field not in PER_MESSAGE:
                assert actual_fields[field] == value, field
        assert base64.b64decode(actual["body"]) == base64.b64decode(expected["body"])
        assert json.loads(base64.b64decode(actual["body"]))[0] == [
            dispatch.task_id,
            dispatch.dispatch_no,
        ]
        # Ids stay readable, "<task>.<dispatch>.<random>", and unique.
        ident = actual["headers"]["id"]
        assert ident.startswith(f"{dispatch.task_id}.{dispatch.dispatch_no}.")
        assert ident != expected["headers"]["id"]
        assert ident == actual["headers"]["root_id"] == actual["properties"]["correlation_id"]
        assert actual["properties"]["delivery_tag"] != expected["properties"]["delivery_tag"]
        # Byte for byte once the ids are set aside: same json module, same separators.
        for field in PER_MESSAGE:
            section, key = field
            actual[section][key] = expected[section][key]
        assert json.dumps(actual) == by_kombu.decode()


def test_a_batch_keeps_its_order_on_each_queue(queue: CeleryTaskQueue, broker_url: str) -> None:
    dispatches = [Dispatch(n, 1, Priority.LOW if n % 3 else Priority.HIGH) for n in range(30)]
    pairs = _send_task_and_direct(queue, broker_url, dispatches)
    for by_kombu, direct in pairs:
        assert (
            json.loads(direct)["headers"]["argsrepr"] == json.loads(by_kombu)["headers"]["argsrepr"]
        )
    assert [queue.pending(p) for p in Priority] == [0, 0, 0]


def test_only_a_plain_redis_broker_is_written_directly(tmp_path: Path) -> None:
    assert supports("redis://127.0.0.1:6379/9", {"visibility_timeout": 60})
    assert not supports("redis://127.0.0.1:6379/9", {"global_keyprefix": "x:"})
    assert not supports("redis://a:6379/9;redis://b:6379/9", {})
    assert not supports("rediss://127.0.0.1:6379/9", {})
    embedded = create_celery_app(
        f"filesystem://localhost{tmp_path / 'broker'}", visibility_timeout_seconds=60
    )
    assert not CeleryTaskQueue(embedded).writes_redis_directly


def test_a_celery_worker_runs_what_the_publisher_writes(tmp_path: Path) -> None:
    with celery_stack(tmp_path) as stack:
        queue = stack.container.queue()
        assert isinstance(queue, CeleryTaskQueue) and queue.writes_redis_directly
        worker = stack.worker("high")

        # Published at creation, by the container's queue: directly on Redis.
        created = [stack.create(Priority.HIGH, a=i, b=2**62) for i in range(5)]
        ids = [task.id for task in created if task.id is not None]
        done = stack.wait_finished(ids, timeout=30)

        assert [task.status for task in done] == [TaskStatus.SUCCESS] * 5
        assert [task.result for task in done] == [i + 2**62 for i in range(5)]
        assert all(len(executions(worker, task_id)) == 1 for task_id in ids)
        # Acknowledged through its delivery tag: nothing left unacknowledged in kombu's records.
        client = stack.redis()
        wait_until(lambda: client.hlen("unacked") == 0, 10, what="every message acknowledged")
        assert queue.pending(Priority.HIGH) == 0

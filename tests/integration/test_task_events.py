"""Task events on Redis (adapters/broker/events.py): buffered events leave in one PUBLISH per
EVENTS_FLUSH_SECONDS, not one per event, as the list Celery's receivers read (the system tests
receive them with Celery's EventReceiver and Flower from running workers)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from kombu.asynchronous import Hub, set_event_loop

from adapters.broker import create_celery_app
from adapters.broker.events import EVENTS_FLUSH_SECONDS, OVERDUE_SECONDS
from tests.integration.celery_stack import redis_database

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def hub() -> Iterator[Hub]:
    loop = Hub()
    set_event_loop(loop)  # what Celery's Hub bootstep does in a prefork worker
    yield loop
    set_event_loop(None)
    loop.close()


def _published(pubsub: redis.client.PubSub) -> list[list[dict[str, object]]]:
    """The event batches PUBLISHed so far: each a list of events (kombu's envelope, its body
    base64-encoded JSON)."""
    batches = []
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        if message["type"] != "pmessage":
            continue
        envelope = json.loads(message["data"])
        batches.append(json.loads(base64.b64decode(envelope["body"])))
    return batches


def test_buffered_task_events_leave_together_once_the_interval_is_over(
    broker_url: str, hub: Hub
) -> None:
    app = create_celery_app(broker_url, visibility_timeout_seconds=60, task_events=True)
    client = redis.Redis.from_url(broker_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    # Pub/Sub spans every Redis database: kombu names the channel after this one's number, and
    # only task events are read (other tests' workers send heartbeats on the same server).
    database = urlsplit(broker_url).path.lstrip("/") or "0"
    pubsub.psubscribe(f"/{database}.celeryev/task.*")
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(
            connection,
            hostname="high@test",
            buffer_group=["task"],
            on_send_buffered=lambda: None,  # as Celery's consumer passes when it has a hub
        )
        for n in range(5):
            dispatcher.send("task-received", uuid=f"m-{n}", name="taskman.execute")
        assert _published(pubsub) == [], "nothing before the interval is over"

        time.sleep(EVENTS_FLUSH_SECONDS)
        hub.fire_timers(min_delay=0)
        (batch,) = _published(pubsub)
        assert [event["uuid"] for event in batch] == [f"m-{n}" for n in range(5)]
        assert {event["type"] for event in batch} == {"task-received"}

        # Celery's rule stays: a full buffer (24 events) leaves at once.
        for n in range(24):
            dispatcher.send("task-started", uuid=f"s-{n}")
        (full,) = _published(pubsub)
        assert len(full) == 24

        # A flush whose timer was dropped (Celery's consumer clears the hub's timer when it
        # restarts) is scheduled again by the next event once overdue: no event is held back.
        dispatcher.send("task-received", uuid="lost-timer")
        hub.timer.clear()
        time.sleep(EVENTS_FLUSH_SECONDS + OVERDUE_SECONDS)
        dispatcher.send("task-received", uuid="next")
        time.sleep(EVENTS_FLUSH_SECONDS)
        hub.fire_timers(min_delay=0)
        (late,) = _published(pubsub)
        assert [event["uuid"] for event in late] == ["lost-timer", "next"]
        dispatcher.close()

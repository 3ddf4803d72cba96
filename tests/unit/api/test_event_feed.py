"""The shared event feed on the fake store: a store that stops answering ends every stream (its
clients resume with Last-Event-ID) and the next stream starts the feed again; a batch larger than
a subscriber's buffer still reaches a subscriber that holds nothing; each event is written as
sse_starlette would write its JSON. The feed on PostgreSQL:
tests/integration/test_event_feed.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from itertools import product

from sse_starlette import ServerSentEvent

from application.ports import TaskEvent
from application.use_cases import CreateTaskRequest, EventCursor, FollowEvents
from domain.priority import Priority
from domain.task import TaskStatus
from entrypoints.api.event_feed import EventFeed, Subscription, encoded
from entrypoints.api.history_schemas import event_data
from tests.unit.conftest import Core

POLL = 0.01


def test_a_store_that_stops_answering_ends_every_stream_and_the_next_starts_the_feed(
    core: Core,
) -> None:
    async def scenario() -> None:
        feed = EventFeed(lambda: FollowEvents(core.uow, gap_wait=0), POLL)
        streams = [feed.join(EventCursor()), feed.join(EventCursor())]
        await asyncio.sleep(POLL * 3)
        assert feed.running and feed.reads >= 1
        core.uow.available = False
        ended = await asyncio.wait_for(
            asyncio.gather(*(s.next() for s in streams if s is not None)), 5
        )
        assert ended == [None, None] and not feed.running and feed.subscribers == 0

        core.uow.available = True
        core.create_task.execute(CreateTaskRequest(a=1, b=2))
        again = feed.join(EventCursor())
        assert again is not None and feed.running
        chunk = await asyncio.wait_for(again.next(), 5)
        assert chunk is not None and chunk.startswith(b"id: 1\r\nevent: task\r\ndata: {")
        feed.leave(again)
        assert not feed.running

    asyncio.run(scenario())


def test_a_subscriber_holding_nothing_takes_a_batch_larger_than_its_buffer() -> None:
    async def scenario() -> None:
        subscription = Subscription(EventCursor(), buffer=2)
        assert subscription.offer(b"three events", 3), "else a large read would cut everyone"
        assert not subscription.offer(b"one more", 1) and subscription.cut_off
        assert await subscription.next() == b"three events"
        assert await subscription.next() is None

    asyncio.run(scenario())


def test_each_event_is_encoded_as_sse_starlette_encodes_its_json() -> None:
    times = (
        datetime(2026, 12, 1, 8, 45, 47, 830487, tzinfo=UTC),
        datetime(2026, 12, 1, 8, 45, 47, tzinfo=UTC),  # no microseconds: none written
        datetime(2026, 12, 1, 9, 45, 47, 1, tzinfo=timezone(timedelta(hours=1))),
    )
    events = [
        TaskEvent(id=10**12 + n, task_id=n, tenant="acme", status=status, priority=priority, at=at)
        for n, (status, priority, at) in enumerate(product(TaskStatus, Priority, times))
    ]
    expected = b"".join(
        ServerSentEvent(data=json.dumps(event_data(e)), id=str(e.id), event="task").encode()
        for e in events
    )
    assert encoded(events) == expected
    assert encoded([]) == b""

"""One reader of the event log per API process, shared by every open `GET /api/v1/events`
stream: N streams cost one read of the log per poll and one encoding of each event, not N.

The feed starts with its first subscriber and stops when the last one leaves. It reads every
task's events with FollowEvents (so with its rule for missing ids) and hands each batch to each
subscriber, which keeps the events its cursor wants (tenant, status, priority) and above its own
position, already encoded as Server-Sent Events.

A stream joins the feed only once its cursor is at or past the feed's position (every event up
to it handed out): one resuming from an older Last-Event-ID first catches up with its own reads
(`stream`), and starts the feed, if none runs, only once it has caught up with the log. A
subscriber ahead of the feed skips what it has already read, so the handover neither loses nor
repeats an event.

A slow subscriber never holds the feed back: each holds at most `buffer` events not yet sent;
one that would exceed it is cut off (its stream sends what it holds, then ends) and its client,
reconnecting with Last-Event-ID, resumes where it stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

from application.ports import StoreUnavailable, TaskEvent
from application.use_cases import EventCursor, FollowEvents
from domain.access import BUILT_IN

logger = logging.getLogger(__name__)

# Events a subscriber may hold unsent (about 150 bytes each): 20 full reads of the log.
SUBSCRIBER_BUFFER = 10_000


def encoded(events: list[TaskEvent]) -> bytes:
    """The Server-Sent Events of `events`, each `event: task` with its id, as one chunk."""
    return b"".join(_encoded(event) for event in events)


def _encoded(event: TaskEvent) -> bytes:
    """One event as sse_starlette's `ServerSentEvent(data=json.dumps(event_data(event)),
    id=str(event.id), event="task").encode()` writes it, byte for byte (checked on every status
    and priority by tests/unit/api/test_event_feed.py), in about a quarter of its time: each
    API process pays it once per event of the log while any of its streams is open. Formatted
    directly because every field is an integer or a string JSON does not escape (a status's
    value, an ISO 8601 time)."""
    return (
        f'id: {event.id}\r\nevent: task\r\ndata: {{"event_id": {event.id}, "task_id": '
        f'{event.task_id}, "status": "{event.status.value}", "priority": {event.priority:d}, '
        f'"at": "{event.at.isoformat()}"}}\r\n\r\n'
    ).encode()


class Subscription:
    """One stream's share of the feed: the chunks handed to it and not yet sent."""

    def __init__(self, cursor: EventCursor, buffer: int) -> None:
        self.cursor = cursor
        self._buffer = buffer
        self._chunks: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self._held = 0  # events in the queue
        self.cut_off = False

    def offer(self, chunk: bytes, count: int) -> bool:
        """Queues `count` events; False (and the subscription ends) if that would exceed its
        buffer. An empty queue takes any batch, so a read of the log never cuts anyone off."""
        if self._held and self._held + count > self._buffer:
            self.cut_off = True
            self.end()
            return False
        self._chunks.put_nowait((chunk, count))
        self._held += count
        return True

    def end(self) -> None:
        """No more chunks: `next` answers None once the queued ones are taken."""
        self._chunks.put_nowait(None)

    async def next(self) -> bytes | None:
        """The next chunk to send; None when the subscription is over."""
        item = await self._chunks.get()
        if item is None:
            return None
        chunk, count = item
        self._held -= count
        return chunk


class EventFeed:
    """Reads every task's events once per poll for all the streams of this process."""

    def __init__(
        self,
        follow: Callable[[], FollowEvents],
        poll_seconds: float,
        buffer: int = SUBSCRIBER_BUFFER,
    ) -> None:
        self._follow = follow
        self._poll_seconds = poll_seconds
        self._buffer = buffer
        self._subscribers: dict[Subscription, None] = {}  # in the order they joined
        self._position = 0  # every event up to this id is handed out
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # reads of the log so far

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def stream(
        self, follow: FollowEvents, cursor: EventCursor, *, resumed: bool = False
    ) -> AsyncIterator[bytes]:
        """The Server-Sent Events of a reader of every task's events, from its cursor on (placed
        by `follow.open`): read by itself until it reaches the feed, then from the feed. A
        `resumed` cursor (from a Last-Event-ID) may be far behind the log's end: it starts no
        feed before it has caught up with the log by itself, so the feed always starts near the
        end and the streams that come after it are not held back by one client's backlog."""
        current = not resumed
        while (subscription := self.join(cursor, current=current)) is None:
            read_past = cursor.after_id
            if found := await run_in_threadpool(follow.next, cursor):
                yield encoded(found)
            current = not cursor.more
            if cursor.after_id == read_past:  # waiting on a missing id
                await asyncio.sleep(self._poll_seconds)
        try:
            while (chunk := await subscription.next()) is not None:
                yield chunk
        finally:
            self.leave(subscription)

    def join(self, cursor: EventCursor, *, current: bool = True) -> Subscription | None:
        """Subscribes a reader of every task's events, unless its cursor is behind the feed
        (None: it reads on by itself and tries again). The first subscriber starts the feed
        at its own position, if that is `current` (at the log's end, as far as it knows);
        else None too."""
        if self._task is None:
            if not current:
                return None
            self._position = cursor.after_id
            start = EventCursor(
                principal=BUILT_IN, after_id=cursor.after_id, gap_since=cursor.gap_since
            )
            self._task = asyncio.create_task(self._run(start), name="event-feed")
        elif cursor.after_id < self._position:
            return None
        subscription = Subscription(cursor, self._buffer)
        self._subscribers[subscription] = None
        return subscription

    def leave(self, subscription: Subscription) -> None:
        """Unsubscribes; the last one to leave stops the feed."""
        self._subscribers.pop(subscription, None)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, cursor: EventCursor) -> None:
        follow = self._follow()
        try:
            while True:
                events = await run_in_threadpool(follow.next, cursor)
                self.reads += 1
                self._hand_out(events, cursor.after_id)
                if not self._subscribers:  # the last ones were cut off
                    self._task = None
                    return
                # Under load a read right after the last finds a few events, at the cost of a
                # whole read (a transaction, from a thread): one per poll serves them all.
                if not cursor.more:
                    await asyncio.sleep(self._poll_seconds)
        except StoreUnavailable as error:
            logger.warning("event feed stopped, its streams end: %s", error)
        except Exception:  # a bug: each stream still ends, and its client resumes
            logger.exception("event feed failed, its streams end")
        finally:
            # Not stopped by the last subscriber leaving: end every stream (clients resume).
            if self._task is asyncio.current_task():
                self._task = None
                for subscription in self._subscribers:
                    subscription.end()
                self._subscribers.clear()

    def _hand_out(self, events: list[TaskEvent], position: int) -> None:
        if events:
            chunks = [(event, _encoded(event)) for event in events]
            for subscription in list(self._subscribers):
                cursor = subscription.cursor
                wanted = [
                    data
                    for event, data in chunks
                    if event.id > cursor.after_id and cursor.wants(event)
                ]
                if wanted and not subscription.offer(b"".join(wanted), len(wanted)):
                    del self._subscribers[subscription]
                    logger.info("event stream cut off: over %d events unsent", self._buffer)
        for subscription in self._subscribers:
            subscription.cursor.after_id = max(subscription.cursor.after_id, position)
        self._position = position

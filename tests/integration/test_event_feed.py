"""The shared reader of the event log (entrypoints/api/event_feed.py) on PostgreSQL: every
stream of every task's events gets exactly its events in order, a stream resuming from an older
id catches up by itself and joins the feed without a gap or a repeat, a slow stream is cut off
while the others go on, a missing id is still waited for, nobody listening means no reads, and
under load the feed reads once per poll (at once again only after a full read)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sqlalchemy import Engine

from adapters.sql import SqlUnitOfWork
from application.ports import TaskEvent
from application.use_cases import EventCursor, FollowEvents
from application.use_cases.follow_events import EVENTS_PER_READ
from domain.access import Principal, Scope
from domain.priority import Priority
from domain.task import Task, TaskStatus
from entrypoints.api.event_feed import EventFeed
from tests.contract.repository_contract import LEASE, NOW, SCHEDULE, added

POLL = 0.05
WAIT = 10.0
ACME = Principal("acme", frozenset({Scope.READ}))


class CountingFollow(FollowEvents):
    def __init__(self, engine: Engine, gap_wait: float = 2.0) -> None:
        super().__init__(SqlUnitOfWork(engine, read_only=True), gap_wait)
        self.reads = 0

    def next(self, cursor: EventCursor) -> list[TaskEvent]:
        self.reads += 1
        return super().next(cursor)


class Collector:
    """Runs a stream in a task of its own and keeps the ids of the events it sends."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.ids: list[int] = []
        self._task = asyncio.create_task(self._collect(chunks))

    async def _collect(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            self.ids += _ids(chunk)

    async def until(self, count: int) -> list[int]:
        """Its ids once it has `count` of them, and a few polls more (to see any extra)."""
        deadline = time.monotonic() + WAIT
        while len(self.ids) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(POLL * 4)
        return self.ids

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _ids(chunk: bytes) -> list[int]:
    lines = chunk.decode().splitlines()
    assert all(line.startswith(("id: ", "event: task", "data: ")) for line in lines if line)
    return [int(line[4:]) for line in lines if line.startswith("id: ")]


def _task(priority: Priority, tenant: str = "default") -> Task:
    return Task.single(
        1, 2, priority=priority, now=NOW, schedule=SCHEDULE, max_attempts=3, tenant=tenant
    )


def _claim(engine: Engine, task_id: int) -> None:
    uow = SqlUnitOfWork(engine)
    with uow:
        assert uow.tasks.claim(task_id, 1, NOW, LEASE) is not None
        uow.commit()


def _log(engine: Engine, after_id: int) -> list[TaskEvent]:
    uow = SqlUnitOfWork(engine, read_only=True)
    with uow:
        return uow.history.events(after_id, 100_000)


def _last_id(engine: Engine) -> int:
    uow = SqlUnitOfWork(engine, read_only=True)
    with uow:
        return uow.history.last_event_id()


def _opened(
    engine: Engine, cursor: EventCursor, *, resume: bool = False, gap_wait: float = 2.0
) -> CountingFollow:
    follow = CountingFollow(engine, gap_wait)
    follow.open(cursor, resume=resume)
    return follow


async def _eventually(condition: Callable[[], bool]) -> None:
    """Waits until `condition` holds (a read from a worker thread may take a while on a busy
    machine), for up to WAIT seconds; the caller asserts what follows."""
    deadline = time.monotonic() + WAIT
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_subscribers_with_different_filters_each_get_exactly_their_events_in_order(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    async def scenario() -> None:
        feed = EventFeed(lambda: CountingFollow(pg_engine), POLL)
        cursors = {
            "admin": EventCursor(),
            "acme": EventCursor(principal=ACME),
            "running high": EventCursor(status=TaskStatus.RUNNING, priority=Priority.HIGH),
            "acme low": EventCursor(principal=ACME, priority=Priority.LOW),
        }
        start = _last_id(pg_engine)
        streams = {
            name: Collector(feed.stream(_opened(pg_engine, cursor), cursor))
            for name, cursor in cursors.items()
        }
        for _ in range(3):
            high, _low, acme_high, _medium = added(
                pg_uow,
                _task(Priority.HIGH),
                _task(Priority.LOW, "acme"),
                _task(Priority.HIGH, "acme"),
                _task(Priority.MEDIUM),
            )
            _claim(pg_engine, high)
            _claim(pg_engine, acme_high)
            await asyncio.sleep(POLL)  # the rounds come in several reads
        log = _log(pg_engine, start)
        assert len(log) == 18
        for name, cursor in cursors.items():
            expected = [event.id for event in log if cursor.wants(event)]
            assert await streams[name].until(len(expected)) == expected, name
        assert feed.subscribers == 4
        for stream in streams.values():
            await stream.close()
        assert not feed.running

    _run(scenario)


def test_a_stream_resuming_from_an_older_id_catches_up_and_joins_the_feed_losing_nothing(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    def keep_writing(rounds: int) -> None:
        for _ in range(rounds):
            added(pg_uow, *[_task(Priority.MEDIUM) for _ in range(5)])
            time.sleep(POLL / 3)

    async def scenario() -> None:
        feed = EventFeed(lambda: CountingFollow(pg_engine), POLL)
        start = _last_id(pg_engine)
        added(pg_uow, *[_task(Priority.LOW) for _ in range(20)])
        live_cursor = EventCursor()
        live = Collector(feed.stream(_opened(pg_engine, live_cursor), live_cursor))
        live_start = live_cursor.after_id
        writer = asyncio.create_task(asyncio.to_thread(keep_writing, 40))
        resumers = []
        for resume_after in (start, start + 7, start + 15):
            await asyncio.sleep(POLL * 2)  # with events written all along
            cursor = EventCursor(after_id=resume_after)
            follow = _opened(pg_engine, cursor, resume=True)
            resumers.append((resume_after, follow, Collector(feed.stream(follow, cursor))))
        await writer
        log = _log(pg_engine, start)
        assert len(log) == 20 + 40 * 5
        got = await live.until(len([e for e in log if e.id > live_start]))
        assert got == [event.id for event in log if event.id > live_start]
        for resume_after, follow, stream in resumers:
            expected = [event.id for event in log if event.id > resume_after]
            assert await stream.until(len(expected)) == expected, resume_after
            assert follow.reads >= 1  # it caught up by itself first
        assert feed.subscribers == 4  # then joined

    _run(scenario)


def test_at_the_join_point_a_stream_skips_what_it_has_read_and_misses_nothing(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    async def scenario() -> None:
        # A poll long enough that the feed, once it has read up to `position`, reads again only
        # after the streams below have joined, behind, at or ahead of it.
        feed = EventFeed(lambda: CountingFollow(pg_engine), poll_seconds=1.0)
        added(pg_uow, _task(Priority.HIGH))
        live_cursor = EventCursor()
        live = Collector(feed.stream(_opened(pg_engine, live_cursor), live_cursor))
        await _eventually(lambda: feed.reads >= 1)
        position = live_cursor.after_id
        assert feed.running and feed.reads == 1 and position == _last_id(pg_engine)
        added(pg_uow, *[_task(Priority.HIGH) for _ in range(3)])
        new = [event.id for event in _log(pg_engine, position)]
        assert len(new) == 3
        streams = {}
        for resume_after in (position - 1, position, new[1]):  # behind, at, ahead of the feed
            cursor = EventCursor(after_id=resume_after)
            follow = _opened(pg_engine, cursor, resume=True)
            streams[resume_after] = (follow, Collector(feed.stream(follow, cursor)))
        await _eventually(lambda: feed.subscribers == 4)
        assert streams[position - 1][0].reads == 1, "behind: it read up to the end by itself"
        assert streams[position][0].reads == streams[new[1]][0].reads == 0
        assert feed.subscribers == 4 and feed.reads == 1  # the feed has not read the new ones
        assert await streams[position - 1][1].until(4) == [position, *new]
        assert await streams[position][1].until(3) == new
        assert await streams[new[1]][1].until(1) == new[2:]
        assert await live.until(3) == new

    _run(scenario)


def test_a_slow_subscriber_is_cut_off_and_the_others_go_on(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    async def scenario() -> None:
        feed = EventFeed(lambda: CountingFollow(pg_engine), POLL, buffer=5)
        fast_cursor, slow_cursor = EventCursor(), EventCursor()
        fast = Collector(feed.stream(_opened(pg_engine, fast_cursor), fast_cursor))
        _opened(pg_engine, slow_cursor)
        start = slow_cursor.after_id
        slow = feed.join(slow_cursor)  # never read from until it is cut off
        assert slow is not None
        for round_ in range(1, 5):
            added(pg_uow, *[_task(Priority.MEDIUM) for _ in range(3)])
            deadline = time.monotonic() + WAIT
            while len(fast.ids) < 3 * round_ and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        log = [event.id for event in _log(pg_engine, start)]
        assert fast.ids == log, "the slow one held nobody back"
        assert slow.cut_off and feed.subscribers == 1
        held = []
        while (chunk := await slow.next()) is not None:
            held += _ids(chunk)
        assert held == log[:3], "it sends what it holds, then its stream ends"
        # Its client reconnects with the last id it got and misses nothing.
        cursor = EventCursor(after_id=held[-1])
        resumed = Collector(feed.stream(_opened(pg_engine, cursor, resume=True), cursor))
        assert await resumed.until(len(log) - 3) == log[3:]

    _run(scenario)


def test_the_feed_waits_for_a_missing_id_before_handing_out_the_next(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    async def scenario() -> None:
        feed = EventFeed(lambda: CountingFollow(pg_engine, gap_wait=30), POLL)
        added(pg_uow, _task(Priority.LOW))  # the log's last id is the stream's start
        cursor = EventCursor()
        stream = Collector(feed.stream(_opened(pg_engine, cursor), cursor))
        slow_writer = SqlUnitOfWork(pg_engine)
        with slow_writer:
            slow_writer.tasks.add(_task(Priority.LOW))  # takes an event id, not committed yet
            added(SqlUnitOfWork(pg_engine), _task(Priority.HIGH))
            await asyncio.sleep(POLL * 5)
            assert stream.ids == [], "the later id waits for the missing one"
            slow_writer.commit()
        log = [event.id for event in _log(pg_engine, cursor.after_id)]
        assert len(log) == 2 and await stream.until(2) == log

    _run(scenario)


def test_the_feed_reads_only_while_someone_listens(pg_engine: Engine) -> None:
    async def scenario() -> None:
        feed = EventFeed(lambda: CountingFollow(pg_engine), POLL)
        assert not feed.running
        await asyncio.sleep(POLL * 3)
        assert feed.reads == 0
        for _ in range(2):  # stopped by the last to leave, started again by the next to come
            cursors = [EventCursor(), EventCursor(priority=Priority.HIGH)]
            streams = [Collector(feed.stream(_opened(pg_engine, c), c)) for c in cursors]
            await asyncio.sleep(POLL * 4)
            assert feed.running and feed.subscribers == 2
            before = feed.reads
            await asyncio.sleep(POLL * 4)
            assert feed.reads > before, "one read per poll while they listen"
            await streams[0].close()
            assert feed.running
            await streams[1].close()
            assert not feed.running and feed.subscribers == 0
            stopped_at = feed.reads
            await asyncio.sleep(POLL * 5)
            assert feed.reads == stopped_at

    _run(scenario)


def test_a_read_that_outlives_its_stopped_feed_hands_nothing_out(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    release = threading.Event()

    class Stuck(CountingFollow):
        def next(self, cursor: EventCursor) -> list[TaskEvent]:
            release.wait(WAIT)  # still in its thread when its feed is stopped, and after
            return super().next(cursor)

    async def scenario() -> None:
        follows: list[CountingFollow] = [Stuck(pg_engine), CountingFollow(pg_engine)]
        feed = EventFeed(lambda: follows.pop(0), POLL)
        added(pg_uow, _task(Priority.LOW))
        first = EventCursor()
        _opened(pg_engine, first)
        stuck = follows[0]
        subscription = feed.join(first)
        assert subscription is not None
        await asyncio.sleep(POLL)
        feed.leave(subscription)  # while its read is stuck
        added(pg_uow, *[_task(Priority.LOW) for _ in range(3)])
        cursor = EventCursor()
        follow = _opened(pg_engine, cursor)
        start = cursor.after_id
        stream = Collector(feed.stream(follow, cursor))
        await asyncio.sleep(POLL * 2)
        added(pg_uow, *[_task(Priority.HIGH) for _ in range(2)])
        release.set()
        expected = [event.id for event in _log(pg_engine, start)]
        assert len(expected) == 2 and await stream.until(2) == expected
        assert stuck.reads == 1 and feed.subscribers == 1, "the stopped feed read no more"

    _run(scenario)


def test_under_load_the_feed_reads_once_per_poll_and_again_at_once_only_after_a_full_read(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    async def scenario() -> None:
        # A long poll: every read but the first comes from the feed's own rule. No wait for a
        # missing id (one an earlier test rolled back may precede the burst): not the subject.
        feed = EventFeed(lambda: CountingFollow(pg_engine, gap_wait=0), poll_seconds=1.5)
        cursor = EventCursor()
        live = Collector(feed.stream(_opened(pg_engine, cursor), cursor))
        await _eventually(lambda: feed.reads >= 1)
        assert feed.reads == 1
        burst = 2 * EVENTS_PER_READ + 100
        added(pg_uow, *[_task(Priority.HIGH) for _ in range(burst)])
        new = [event.id for event in _log(pg_engine, cursor.after_id)]
        # At the next poll: two full reads, each followed at once by another, then one with the
        # rest, after which it waits a whole poll (a read right after each would find nothing).
        assert await live.until(burst) == new
        assert feed.reads == 1 + 3
        await live.close()

    _run(scenario)


def test_a_first_stream_resuming_from_far_back_starts_the_feed_only_once_caught_up(
    pg_uow: SqlUnitOfWork, pg_engine: Engine
) -> None:
    async def scenario() -> None:
        # No wait for a missing id (one an earlier test rolled back may sit in the backlog and
        # cut a read short): not the subject.
        feed = EventFeed(lambda: CountingFollow(pg_engine, gap_wait=0), POLL)
        start = _last_id(pg_engine)
        added(pg_uow, *[_task(Priority.LOW) for _ in range(EVENTS_PER_READ + 100)])
        backlog = [event.id for event in _log(pg_engine, start)]
        cursor = EventCursor(after_id=start)
        follow = _opened(pg_engine, cursor, resume=True, gap_wait=0)
        old = Collector(feed.stream(follow, cursor, resumed=True))
        assert await old.until(len(backlog)) == backlog
        # It read the backlog by itself (a full read, then the rest), then started the feed at
        # the log's end: a stream opened now is not behind a backlog.
        assert follow.reads == 2 and feed.running and feed.reads >= 1
        future = EventCursor(after_id=backlog[-1] + 10**6)  # a made-up or restored id
        ahead = Collector(feed.stream(_opened(pg_engine, future, resume=True), future))
        assert future.after_id == backlog[-1], "capped at the newest event"
        added(pg_uow, _task(Priority.LOW))
        (new,) = [event.id for event in _log(pg_engine, backlog[-1])]
        assert await ahead.until(1) == [new]
        assert await old.until(len(backlog) + 1) == [*backlog, new]
        await old.close()
        await ahead.close()

    _run(scenario)

"""Celery's task events (what Flower and `celery events` show), sent in fewer, larger batches.

A worker's main process sends three task events per message (task-received, -started,
-succeeded or -failed). Celery's dispatcher buffers them, but flushes its buffer at the event
loop's next turn, so while messages arrive one at a time, as a pool's do, nearly every event
becomes a PUBLISH of its own, and kombu's Redis channel takes a client for each. That, not
building the events, was most of what turning events on cost a pool (docs/benchmark.md).

`BatchingEventDispatcher` keeps Celery's rule of flushing once `buffer_limit` (24) events wait,
and otherwise flushes EVENTS_FLUSH_SECONDS after the first one buffered: one PUBLISH then
carries every event of that interval, as the `task.multi` list Celery's own receivers (Flower,
`celery events`, EventReceiver) already read. An event reaches them at most that much later."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher
from kombu.asynchronous import get_event_loop

# Far below what a person watching Flower notices, long enough to gather a busy pool's events.
EVENTS_FLUSH_SECONDS = 0.1
# A scheduled flush this late is taken for lost.
OVERDUE_SECONDS = 1.0


class BatchingEventDispatcher(EventDispatcher):  # type: ignore[misc]
    """Celery's EventDispatcher; where Celery would flush its buffer at the event loop's next
    turn (`on_send_buffered`), this one flushes EVENTS_FLUSH_SECONDS later, once."""

    def __init__(self, *args: Any, on_send_buffered: Callable[[], Any] | None = None, **kw: Any):
        self._flush_due_at: float | None = None  # monotonic time of the flush scheduled, if any
        # Celery passes on_send_buffered only when the worker runs an event loop (prefork):
        # elsewhere events are not buffered, and nothing changes.
        later = self._flush_later if on_send_buffered is not None else None
        super().__init__(*args, on_send_buffered=later, **kw)

    def _flush_later(self) -> None:
        now = time.monotonic()
        # One flush scheduled at a time; but one long overdue was dropped with its timer (Celery's
        # consumer clears the hub's timer when it restarts), so another is scheduled.
        if self._flush_due_at is not None and now < self._flush_due_at + OVERDUE_SECONDS:
            return
        loop = get_event_loop()  # the worker's hub, set by Celery's Hub bootstep
        if loop is None:
            self.flush()
            return
        self._flush_due_at = now + EVENTS_FLUSH_SECONDS
        loop.call_later(EVENTS_FLUSH_SECONDS, self._flush_now)  # type: ignore[no-untyped-call]

    def _flush_now(self) -> None:
        self._flush_due_at = None
        self.flush()


class BatchingEvents(Events):  # type: ignore[misc]
    """`app.events` with the dispatcher above (`Celery(events=BatchingEvents)`)."""

    dispatcher_cls = BatchingEventDispatcher

"""One request at a time per task for the moves (change priority, retry, cancel), so a hot row
can never take every thread.

A move runs in the threadpool, and its UPDATE waits there (holding a thread and a database
connection) while another session holds the task's row: up to DB_LOCK_TIMEOUT_SECONDS. Without
a limit, a crowd of clients moving one locked task fills the whole threadpool, and health,
creates and reads queue behind it. So, in each API process, a move first waits for its task's
turn on the event loop, where waiting costs no thread and no connection, and for no longer than
the lock timeout: then TaskBusy, a 503 with Retry-After. Moves of one task would take the row
one after the other anyway; turns only keep the queue off the threadpool.

Reads take no turn: in PostgreSQL a row lock never blocks a plain read.

Turns never mix event loops (one per API process under uvicorn; a test client may run requests
on loops of their own, and an asyncio primitive belongs to the loop that first waits on it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary


class TaskBusy(Exception):
    """Other requests kept the task for longer than the bounded wait."""

    def __init__(self, task_id: int, waited_seconds: float) -> None:
        super().__init__(
            f"task {task_id} is being changed by other requests; "
            f"no turn within {waited_seconds:g} s, try again shortly"
        )
        self.task_id = task_id


class _Turn:
    __slots__ = ("semaphore", "users")

    def __init__(self) -> None:
        self.semaphore = asyncio.Semaphore(1)
        self.users = 0  # holding or waiting: the entry is dropped when nobody is left


class TaskTurns:
    """`async with turns.of(task_id):` waits at most `wait_seconds` (raising TaskBusy) until no
    other request of this process is inside the block for the same task."""

    def __init__(self, wait_seconds: float) -> None:
        self._wait_seconds = wait_seconds
        self._per_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Turn]] = (
            WeakKeyDictionary()
        )

    @asynccontextmanager
    async def of(self, task_id: int) -> AsyncIterator[None]:
        turns = self._per_loop.setdefault(asyncio.get_running_loop(), {})
        turn = turns.setdefault(task_id, _Turn())
        turn.users += 1
        try:
            try:
                async with asyncio.timeout(self._wait_seconds):
                    await turn.semaphore.acquire()
            except TimeoutError:
                raise TaskBusy(task_id, self._wait_seconds) from None
            try:
                yield
            finally:
                turn.semaphore.release()
        finally:
            turn.users -= 1
            if turn.users == 0:
                del turns[task_id]

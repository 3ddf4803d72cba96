"""Concurrent `POST /tasks` requests accepted together: one transaction, one multi-row INSERT
and one Redis push for every create that arrived while the group before was being stored.

No request waits for company: a create that finds no group in flight goes at once, alone, and
costs what it would cost on its own; those that arrive meanwhile form the next group. So the
more clients at once, the larger the groups and the less each create costs the API process and
the database, which is what bounds the create rate (see docs/benchmark.md). Each request still
answers only once its own task is committed, and a request the rules refuse gets its own error.

Groups never mix event loops: under uvicorn there is one per API process, but a test client may
run each request on a loop of its own, and a future can only be settled from its own loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from weakref import WeakKeyDictionary

from starlette.concurrency import run_in_threadpool

from application.use_cases import CreateTask, CreateTaskRequest, IdempotentResponse
from domain.errors import DomainError
from domain.task import Task

# Beyond this the INSERT and the response writing make a group's requests wait on each other
# longer than they gain; 64 concurrent clients rarely fill one.
MAX_GROUP = 128

# A new task, or for a keyed request the response recorded under its key.
Created = Task | IdempotentResponse
_Waiting = tuple[CreateTaskRequest, "asyncio.Future[Created]"]


class CreateGroups:
    def __init__(self, create_task: Callable[[], CreateTask], max_group: int = MAX_GROUP) -> None:
        self._create_task = create_task
        self._max_group = max_group
        self._per_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopGroups] = (
            WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    async def create(self, request: CreateTaskRequest) -> Created:
        loop = asyncio.get_running_loop()
        with self._lock:
            groups = self._per_loop.get(loop)
            if groups is None:
                groups = self._per_loop[loop] = _LoopGroups(self._create_task, self._max_group)
        return await groups.create(request)


class _LoopGroups:
    """The groups of one event loop; touched only from that loop's thread."""

    def __init__(self, create_task: Callable[[], CreateTask], max_group: int) -> None:
        self._create_task = create_task
        self._max_group = max_group
        self._waiting: list[_Waiting] = []
        self._storing: asyncio.Task[None] | None = None

    async def create(self, request: CreateTaskRequest) -> Created:
        future: asyncio.Future[Created] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_groups())
        return await future

    async def _store_groups(self) -> None:
        # No await between the last look at `_waiting` and the end of this task: a request
        # that finds it done (or None) starts the next one, and none is left behind.
        while self._waiting:
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            requests = [request for request, _ in group]
            try:
                outcomes = await run_in_threadpool(self._create_task().execute_all, requests)
            except Exception as failure:  # the store or the broker: every request's failure
                _settle(group, [failure] * len(group))
            except BaseException:  # cancelled: the loop is closing, nobody will be answered
                for _, future in [*group, *self._waiting]:
                    future.cancel()
                self._waiting.clear()
                raise
            else:
                _settle(group, outcomes)
        self._storing = None


def _settle(
    group: Sequence[_Waiting], outcomes: Sequence[Created | DomainError] | Sequence[Exception]
) -> None:
    for (_, future), outcome in zip(group, outcomes, strict=True):
        if future.done():  # its request was cancelled: the task is accepted all the same
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

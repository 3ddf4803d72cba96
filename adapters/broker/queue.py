"""The task-queue port on Celery: publishes wake-up messages of one or several `(task id,
dispatch number)` dispatches (adapters/broker/messages.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar
from urllib.parse import urlsplit

from celery import Celery
from kombu.connection import Connection
from kombu.exceptions import KombuError

from adapters.broker import redis_publisher
from adapters.broker.app import CONNECT_TIMEOUT_SECONDS, EXECUTE_TASK, SOCKET_TIMEOUT_SECONDS
from adapters.broker.messages import arguments, arguments_repr, split
from adapters.broker.redis_publisher import RedisPublisher, message_id
from application.ports import Dispatch, QueueUnavailable, TaskQueue
from domain.priority import Priority

# How long a caller waits for a free pooled producer before the broker counts as unavailable.
ACQUIRE_TIMEOUT_SECONDS = 2.0
# Workers answer a broadcast within a few milliseconds; /health must stay fast.
INSPECT_TIMEOUT_SECONDS = 0.4
CONSUMERS_CACHE_SECONDS = 5.0
# After that, a full answer is still served while one is asked for beside (see `consumers`).
CONSUMERS_STALE_SECONDS = 5.0
# A worker whose answer missed one broadcast's short wait (a busy host) still counts this long
# after its last answer, so /health/ready does not flap; a stopped pool shows after it.
CONSUMER_GRACE_SECONDS = 5.0

T = TypeVar("T")


class CeleryTaskQueue(TaskQueue):
    """Publishes on Redis by writing Celery's message itself through one persistent client
    (adapters/broker/redis_publisher.py, a fraction of send_task's cost), and on any other
    transport through Celery's pooled producers, so a request pays for no new connection.

    Messages go through the default (nameless) exchange straight to the queue named after the
    priority: this needs no exchange bindings stored in the broker, so a wiped Redis still
    routes every message (bindings kept in Redis would vanish with a FLUSHDB, and kombu drops
    messages it cannot route).

    Dispatches published together share messages (`messages.split`): at most `max_tasks` per
    message, over at least `spread` messages per queue while there are that many."""

    def __init__(self, app: Celery, *, max_tasks: int = 1, spread: int = 1) -> None:
        self._app = app
        self._max_tasks = max_tasks
        self._spread = spread
        self._consumers_lock = threading.Lock()
        self._consumers: Mapping[Priority, int] | None = None
        self._consumers_at = 0.0
        self._refreshing = False
        self._answered: dict[str, tuple[float, frozenset[str]]] = {}
        self._errors: tuple[type[BaseException], ...] | None = None
        self._redis: RedisPublisher | None = None
        self._address = broker_address(str(app.conf.broker_url))
        self._password = urlsplit(str(app.conf.broker_url)).password
        if redis_publisher.supports(
            str(app.conf.broker_url), app.conf.broker_transport_options or {}
        ):
            self._redis = RedisPublisher(
                str(app.conf.broker_url),
                connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
                socket_timeout_seconds=SOCKET_TIMEOUT_SECONDS,
                reply_to=lambda: str(app.thread_oid),
                max_tasks=max_tasks,
                spread=spread,
            )

    @property
    def writes_redis_directly(self) -> bool:
        """Whether `publish` writes Celery's messages onto Redis itself (else: send_task)."""
        return self._redis is not None

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        if not dispatches:
            return
        if self._redis is not None:
            try:
                self._redis.publish(dispatches)
            except redis_publisher.ERRORS as error:
                raise self._unavailable(error) from error
            return
        self._send_tasks(dispatches)

    def _send_tasks(self, dispatches: Sequence[Dispatch]) -> None:
        """Through Celery and kombu: the embedded filesystem transport, or any broker the Redis
        publisher does not cover."""
        with self._broker_errors(), self._producer() as producer, _batch(producer, dispatches):
            for chunk in split(dispatches, max_tasks=self._max_tasks, spread=self._spread):
                queue = chunk[0].priority.queue_name
                self._app.send_task(
                    EXECUTE_TASK,
                    args=arguments(chunk),
                    # Given, so Celery skips its safe repr of the arguments for every message.
                    argsrepr=arguments_repr(chunk),
                    kwargsrepr="{}",
                    task_id=message_id(chunk),
                    producer=producer,
                    queue=queue,
                    exchange="",
                    routing_key=queue,
                    declare=[],
                    retry=False,
                )

    def pending(self, priority: Priority) -> int:
        def count(connection: Connection) -> int:
            # Not passive: on Redis an empty queue has no key, and a passive declare of it
            # raises NOT_FOUND. Declaring is harmless there and creates the queue elsewhere.
            declared = connection.default_channel.queue_declare(  # type: ignore[no-untyped-call]
                queue=priority.queue_name, passive=False
            )
            return int(declared.message_count)

        return self._on_live_connection(count)

    def waiting_dispatches(self, priority: Priority) -> int:
        """On Redis, while at most `EXACTLY_COUNTED` messages wait, the dispatches they carry,
        read from their ids (`redis_publisher.message_id`: a message of one dispatch, or of
        `1 + n` for `+n`; an id of another shape counts as the most a message carries). Beyond
        that, and on other transports, every waiting message counts as the most a message
        carries: an upper bound, read in one round trip whatever the backlog."""
        if self._redis is not None:
            try:
                return self._redis.waiting_dispatches(
                    priority.queue_name, most_per_message=self._max_tasks
                )
            except redis_publisher.ERRORS as error:
                raise self._unavailable(error) from error
        return self.pending(priority) * self._max_tasks

    def consumers(self) -> Mapping[Priority, int]:
        """Counted from the workers' answers to a broadcast. A full answer (every queue has a
        worker) is served from a cache: for CONSUMERS_CACHE_SECONDS as it is, then, while a
        thread of its own asks the workers again, for up to CONSUMERS_STALE_SECONDS more, so no
        caller waits the broadcast's INSPECT_TIMEOUT_SECONDS for a refresh (stale-while-
        revalidate, RFC 5861's term). A short answer is never cached, so a pool that was
        starting or has come back shows at once. The broker is asked on every call all the same,
        so an outage shows at once too.

        Transports without broadcast (kombu's SQLAlchemy transport, say) cannot ask workers
        anything: the answer is then empty, meaning "unknown", not "no workers". Redis and the
        filesystem transport of the embedded default both broadcast."""
        self.pending(Priority.HIGH)  # raises QueueUnavailable if the broker is down
        with self._consumers_lock:
            cached = self._consumers
            age = time.monotonic() - self._consumers_at
            if cached is not None and all(cached.values()):
                if age < CONSUMERS_CACHE_SECONDS:
                    return dict(cached)
                if age < CONSUMERS_CACHE_SECONDS + CONSUMERS_STALE_SECONDS:
                    self._refresh_in_background()
                    return dict(cached)
        # No full answer, or one too old to serve: this caller waits for the workers' answers.
        return self._refresh()

    def _refresh_in_background(self) -> None:
        """Starts one refresh at a time (the caller holds the lock)."""
        if self._refreshing:
            return
        self._refreshing = True

        def refresh() -> None:
            try:
                self._refresh()
            except QueueUnavailable:
                pass  # the cache ages out and the next caller asks, and sees the outage
            finally:
                self._refreshing = False

        threading.Thread(target=refresh, name="taskman-consumers-refresh", daemon=True).start()

    def _refresh(self) -> Mapping[Priority, int]:
        replies = self._ask_workers()  # outside the lock: callers served from cache never wait
        with self._consumers_lock:
            self._consumers = self._count(replies)
            self._consumers_at = time.monotonic()
            return dict(self._consumers)

    def _ask_workers(self) -> dict[str, list[dict[str, Any]]] | None:
        """Each worker's answer to `active_queues`; None if the transport cannot broadcast."""

        def ask(connection: Connection) -> dict[str, list[dict[str, Any]]] | None:
            if "fanout" not in connection.transport.implements.exchange_type:
                return None
            inspector = self._app.control.inspect(
                timeout=INSPECT_TIMEOUT_SECONDS, connection=connection
            )
            return inspector.active_queues() or {}

        return self._on_live_connection(ask)

    def _count(self, replies: dict[str, list[dict[str, Any]]] | None) -> Mapping[Priority, int]:
        """Consumers per priority from `replies` and the answers of the last
        CONSUMER_GRACE_SECONDS (the caller holds the lock)."""
        if replies is None:
            return {}
        now = time.monotonic()
        for node, queues in replies.items():
            self._answered[node] = (now, frozenset(str(queue.get("name")) for queue in queues))
        self._answered = {
            node: (at, queues)
            for node, (at, queues) in self._answered.items()
            if now - at < CONSUMER_GRACE_SECONDS
        }
        counts = dict.fromkeys(Priority, 0)
        by_name = {priority.queue_name: priority for priority in Priority}
        for _, names in self._answered.values():
            for name in names:
                if name in by_name:
                    counts[by_name[name]] += 1
        return counts

    @contextmanager
    def _producer(self) -> Iterator[Any]:
        with self._app.producer_pool.acquire(
            block=True, timeout=ACQUIRE_TIMEOUT_SECONDS
        ) as producer:
            yield producer

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self._app.pool.acquire(block=True, timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            yield connection

    def _on_live_connection(self, action: Callable[[Connection], T]) -> T:
        """`action` on a pooled broker connection, once more on a new one if the first is dead.

        A server that closes idle connections (Redis `timeout`, a proxy, a failover, CLIENT KILL)
        leaves dead sockets in the pool, found dead only when used: the connection is then
        dropped without a goodbye and replaced once. A second failure means the broker really
        cannot be reached. Raises QueueUnavailable."""
        for attempt in (1, 2):
            with self._broker_errors(), self._connection() as connection:
                try:
                    return action(connection)
                except self._recoverable_errors() as error:
                    # Its sockets are dead: forget them; the pool reconnects it on next use.
                    connection.collect()  # type: ignore[no-untyped-call]
                    if attempt == 2:
                        raise self._unavailable(error) from error
        raise AssertionError("unreachable")

    @contextmanager
    def _broker_errors(self) -> Iterator[None]:
        try:
            yield
        except self._recoverable_errors() as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: BaseException) -> QueueUnavailable:
        """Names the broker's host:port and the reason; a password never (a client library may
        quote the URL it was given)."""
        reason = f"{type(error).__name__}: {error}"
        if self._password:
            reason = reason.replace(self._password, "***")
        return QueueUnavailable(f"{self._address}: {reason}")

    def _recoverable_errors(self) -> tuple[type[BaseException], ...]:
        if self._errors is None:
            # The transport knows its client library's exceptions (redis-py's for Redis).
            connection = self._app.connection_for_write()
            self._errors = (
                *connection.connection_errors,
                *connection.channel_errors,
                KombuError,
                OSError,
            )
            connection.release()
        return self._errors


def broker_address(broker_url: str) -> str:
    """`host:port` of a network broker URL (credentials left out); the URL's scheme for the
    embedded filesystem transport, which has no address."""
    parts = urlsplit(broker_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or parts.scheme.startswith("filesystem"):
        return parts.scheme or "broker"
    port = port or _DEFAULT_PORTS.get(parts.scheme)
    return f"{parts.hostname}:{port}" if port else parts.hostname


_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}


def _batch(producer: Any, dispatches: Sequence[Dispatch]) -> Any:
    # kombu >= 5.7 pipelines a batch of Redis publishes into one round trip (for a Redis broker
    # the Redis publisher does not cover); other transports publish one by one.
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None and len(dispatches) > 1 else nullcontext()

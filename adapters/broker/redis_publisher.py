"""Publishing on Redis without Celery's and kombu's per-message machinery.

`app.send_task` builds a protocol-2 message through signatures, routers and kombu's producer,
and kombu's Redis channel takes a client per publish: a large share of the API's CPU for a
priority-1 create, several times what this module spends, round trip included
(docs/benchmark.md shows how to measure it). Every message taskman sends has the same
shape: task `taskman.execute`, args one or several dispatches (adapters/broker/messages.py),
the default exchange, the priority's queue. So this module writes the very JSON envelope
kombu's Redis transport writes (`Channel._put`: an LPUSH of `dumps(message)` onto the list
named after the queue, as priority 0 has no suffix) with everything but the ids built once,
through one persistent redis-py client.
Celery workers consume it exactly as they consume a message from `send_task`; the integration
tests compare the two envelopes field by field and run a published message on a real worker.

It covers only what taskman's Celery app configures: a plain `redis://` broker, no key prefix,
no queue expiry, kombu's default priority steps. Anything else goes through kombu
(`supports()` says which)."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from adapters.broker.app import EXECUTE_TASK
from adapters.broker.messages import arguments, arguments_repr, split
from application.ports import Dispatch

# Transport options that change the keys or commands kombu's Redis channel uses: with any of
# them set, this publisher would write somewhere kombu's consumers do not read.
_LAYOUT_OPTIONS = frozenset({"global_keyprefix", "sep", "priority_steps", "queue_order_strategy"})

ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
"""What a publish raises when Redis cannot take the messages."""

# The body's embed (protocol 2's third element), serialised as kombu's json does.
_EMBED = json.dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})


def supports(broker_url: str, transport_options: Mapping[str, Any]) -> bool:
    """Whether kombu would publish on this broker exactly as `RedisPublisher` does."""
    return (
        broker_url.startswith("redis://")
        and ";" not in broker_url  # a failover list: kombu picks the server
        and not (_LAYOUT_OPTIONS & transport_options.keys())
    )


class RedisPublisher:
    """Writes Celery task-protocol-2 messages for `taskman.execute` onto kombu's Redis queues.

    One client (and its connection pool, which redis-py resets in a forked child) for the life of
    the publisher; one round trip per `publish`: one multi-value LPUSH per queue, pipelined when
    the dispatches span several queues. Dispatches share messages as `messages.split` says, with
    `max_tasks` and `spread`. A connection found dead is re-established once; a second
    connection error, or a timeout, reaches the caller at once (after at most the connect
    timeout), as the broker being unavailable."""

    def __init__(
        self,
        broker_url: str,
        *,
        connect_timeout_seconds: float,
        socket_timeout_seconds: float,
        reply_to: Callable[[], str],
        max_tasks: int = 1,
        spread: int = 1,
    ) -> None:
        pool = redis.ConnectionPool.from_url(
            broker_url,
            socket_connect_timeout=connect_timeout_seconds,
            socket_timeout=socket_timeout_seconds,
            # A connection the server closed (its idle `timeout`, a proxy, a failover) is
            # found dead only when used: reconnect and send once more. Only on a connection
            # error, which comes at once, never on a timeout, which would double the wait. If
            # the first LPUSH did land, its message is pushed twice: a duplicate runs nothing
            # twice, as claims are conditional.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self._client = redis.Redis(connection_pool=pool)
        self._reply_to = reply_to
        self._max_tasks = max_tasks
        self._spread = spread
        self._origin_pid = -1
        self._origin = ""

    def publish(self, dispatches: Sequence[Dispatch]) -> None:
        if not dispatches:
            return
        by_queue: dict[str, list[str]] = {}
        origin, reply_to = self._current_origin(), self._reply_to()
        for chunk in split(dispatches, max_tasks=self._max_tasks, spread=self._spread):
            queue = chunk[0].priority.queue_name
            by_queue.setdefault(queue, []).append(message(chunk, queue, origin, reply_to))
        if len(by_queue) == 1:
            ((queue, messages),) = by_queue.items()
            self._client.lpush(queue, *messages)
            return
        with self._client.pipeline(transaction=False) as pipe:
            for queue, messages in by_queue.items():
                pipe.lpush(queue, *messages)
            pipe.execute()

    def waiting_dispatches(self, queue: str, *, most_per_message: int) -> int:
        """How many dispatches the messages waiting on `queue` carry: counted from their ids
        while at most EXACTLY_COUNTED wait (a second round trip, LRANGE), else at most
        `most_per_message` each (LLEN alone, whatever the backlog)."""
        waiting = int(self._client.llen(queue))
        if waiting > EXACTLY_COUNTED:
            return waiting * most_per_message
        # No decode_responses on this client: items are bytes.
        items = cast(list[bytes], self._client.lrange(queue, 0, EXACTLY_COUNTED))
        if len(items) > EXACTLY_COUNTED:  # it grew meanwhile
            return len(items) * most_per_message
        return sum(_dispatches_in(item, most_per_message) for item in items)

    def _current_origin(self) -> str:
        # Celery's anon_nodename(), "gen<pid>@<host>": per process, so recomputed after a fork.
        pid = os.getpid()
        if pid != self._origin_pid:
            self._origin = f"gen{pid}@{socket.gethostname()}"
            self._origin_pid = pid
        return self._origin


EXACTLY_COUNTED = 100
"""Up to this many messages waiting on a queue, the dispatches they carry are counted exactly."""

# The start of the headers' "id" in the envelope this module writes (and kombu, for send_task).
_ID = re.compile(rb'"id": "\d+\.\d+(?:\+(\d+))?\.[0-9a-f]+"')


def _dispatches_in(item: bytes, most_per_message: int) -> int:
    found = _ID.search(item)
    if found is None:  # not written by taskman's publishers: assume the most
        return most_per_message
    return 1 + int(found.group(1) or 0)


def message_id(dispatches: Sequence[Dispatch]) -> str:
    """Readable in worker logs (the first task id and dispatch number, and how many more ride
    along); the suffix keeps a re-published message's id unique."""
    first = dispatches[0]
    more = f"+{len(dispatches) - 1}" if len(dispatches) > 1 else ""
    return f"{first.task_id}.{first.dispatch_no}{more}.{uuid.uuid4().hex[:8]}"


def message(dispatches: Sequence[Dispatch], queue: str, origin: str, reply_to: str) -> str:
    """The JSON kombu's Redis channel pushes for `send_task(EXECUTE_TASK,
    args=messages.arguments(dispatches), argsrepr=..., kwargsrepr="{}", queue=queue,
    exchange="", routing_key=queue)` on taskman's Celery app (see CeleryTaskQueue.publish)."""
    body = f"[{json.dumps(arguments(dispatches))}, {{}}, {_EMBED}]"
    # Every value below is a JSON string that needs no escaping (digits, dots, hex, base64, a
    # queue name) or is escaped by json.dumps; the template is json.dumps's own output.
    return _TEMPLATE.format(
        body=f'"{base64.b64encode(body.encode()).decode()}"',
        id=f'"{message_id(dispatches)}"',
        argsrepr=json.dumps(arguments_repr(dispatches)),
        origin=json.dumps(origin),
        reply_to=json.dumps(reply_to),
        routing_key=json.dumps(queue),
        delivery_tag=f'"{uuid.uuid4()}"',
    )


def _template() -> str:
    """The envelope as kombu serialises it (same keys, same order, same json module and
    separators) with a `{field}` where each message puts its own value."""

    def field(name: str) -> str:
        return f"<<{name}>>"

    envelope = {
        "body": field("body"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        # Celery's as_task_v2 headers, as send_task fills them for taskman's one task.
        "headers": {
            "lang": "py",
            "task": EXECUTE_TASK,
            "id": field("id"),
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": field("id"),
            "parent_id": None,
            "argsrepr": field("argsrepr"),
            "kwargsrepr": "{}",
            "origin": field("origin"),
            "ignore_result": None,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": field("id"),
            "reply_to": field("reply_to"),
            # send_task hands these options on to the producer, which makes them properties.
            "argsrepr": field("argsrepr"),
            "kwargsrepr": "{}",
            "delivery_mode": 2,  # persistent
            # kombu's prepare_message, then basic_publish's _inplace_augment_message.
            "delivery_info": {"exchange": "", "routing_key": field("routing_key")},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": field("delivery_tag"),
        },
    }
    template = json.dumps(envelope).replace("{", "{{").replace("}", "}}")
    for name in ("body", "id", "argsrepr", "origin", "reply_to", "routing_key", "delivery_tag"):
        template = template.replace(json.dumps(field(name)), f"{{{name}}}")
    return template


_TEMPLATE = _template()

"""The Celery application: one queue per priority, no result backend, late acknowledgement.

Built by a factory so that nothing connects (or even exists) at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.app.amqp import AMQP
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from adapters.broker.envelope import EXECUTE_TASK
from adapters.broker.events import BatchingEvents
from adapters.broker.filesystem import TRANSPORT as FILESYSTEM_TRANSPORT
from adapters.broker.redis_transport import TRANSPORT as REDIS_TRANSPORT
from domain.priority import Priority

__all__ = ["EXECUTE_TASK", "QUEUE_NAMES", "create_celery_app"]

QUEUE_NAMES = tuple(priority.queue_name for priority in Priority)

# Publishing runs on the API's request path: a broker that does not answer must fail fast (the
# task is already committed and the dispatcher publishes it later), never retry for minutes.
CONNECT_TIMEOUT_SECONDS = 1.0
# Longer than kombu's 1 s BRPOP poll, so an idle consumer is not mistaken for a dead socket.
SOCKET_TIMEOUT_SECONDS = 5.0
EMBEDDED_POLLING_SECONDS = 0.01
# Defaults of the screening of raw broker items (see create_celery_app).
MESSAGE_MAX_BYTES = 65536
REJECTED_MESSAGES_MAX = 1000


# A worker's consumer that lost the broker reconnects through kombu's
# `Connection.ensure_connection`, whose defaults wait 2 s, then 4, 6, ... up to 30 s between
# attempts: after a few failed attempts (a broker restarting, or closing connections as it
# starts) a worker stays off its queue for up to half a minute after the broker is back. These
# retry at once, then wait 0.5 s longer each time, up to 5 s; with Celery's
# broker_connection_max_retries (100) a worker gives up after about 8 minutes of outage and exits
# with status 1, for its supervisor to see.
RECONNECT_INTERVAL_START_SECONDS = 0.0
RECONNECT_INTERVAL_STEP_SECONDS = 0.5
RECONNECT_INTERVAL_MAX_SECONDS = 5.0


class PromptlyReconnectingConnection(Connection):
    """kombu's Connection, but `ensure_connection` waits the intervals above unless told
    otherwise (Celery's worker consumer calls it without any; Celery has no setting for them)."""

    def ensure_connection(
        self,
        errback: Any = None,
        max_retries: int | None = None,
        interval_start: float = RECONNECT_INTERVAL_START_SECONDS,
        interval_step: float = RECONNECT_INTERVAL_STEP_SECONDS,
        interval_max: float = RECONNECT_INTERVAL_MAX_SECONDS,
        **options: Any,
    ) -> Connection:
        return super().ensure_connection(  # type: ignore[no-untyped-call,no-any-return]
            errback, max_retries, interval_start, interval_step, interval_max, **options
        )


class _AMQP(AMQP):  # type: ignore[misc]
    Connection = PromptlyReconnectingConnection
    BrokerConnection = PromptlyReconnectingConnection


# How long before its lease runs out an overlong attempt is interrupted, so that it can still
# record its failure while it holds the claim.
SOFT_LIMIT_MARGIN_SECONDS = 2.0


def create_celery_app(
    broker_url: str,
    *,
    visibility_timeout_seconds: float,
    attempt_time_limit_seconds: float | None = None,
    message_max_bytes: int = MESSAGE_MAX_BYTES,
    rejected_messages_max: int = REJECTED_MESSAGES_MAX,
    task_events: bool = True,
) -> Celery:
    """`attempt_time_limit_seconds` is the lease: an attempt still running when its lease is
    about to run out raises SoftTimeLimitExceeded (a failed attempt, retried with backoff) and is
    killed when it runs out, so a slow attempt never runs on beside the one the dispatcher starts
    after the lease.

    On Redis (`redis://`, `rediss://`) and the filesystem transport, every raw item taken off a
    queue is screened first (adapters/broker/envelope.py): one that is not a valid message, or
    is over `message_max_bytes` bytes, is set aside (the Redis list `<queue>.rejected`, or the
    broker folder's `rejected/`, keeping the newest `rejected_messages_max`), counted and logged,
    and never reaches Celery, so it cannot stop a worker.

    With `task_events`, workers send Celery's task events (task-received, -started, -succeeded,
    -failed, -retried) and heartbeats to the `celeryev` exchange, so Flower and `celery events`
    show taskman's tasks live; on Redis an event is one PUBLISH that goes nowhere when nobody
    listens. Not on the embedded filesystem transport: there an event is a file per listening
    queue, and a listener that dies leaves its files in the folder every consumer lists on each
    poll. `celery control enable_events` still turns them on there, on purpose."""
    app = Celery(
        "taskman", broker=broker_url, set_as_current=False, amqp=_AMQP, events=BatchingEvents
    )
    events = task_events and not broker_url.startswith("filesystem://")
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # Results live in PostgreSQL only.
        task_ignore_result=True,
        result_backend=None,
        # A message is acknowledged after its attempt, and given back if the worker process
        # dies, so a crash never swallows a task; prefetch 1 keeps waiting work in the broker
        # where a free worker (or the dispatcher's lost-message sweep) can see it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[
            Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]
            for name in QUEUE_NAMES
        ],
        task_default_queue=Priority.MEDIUM.queue_name,
        task_create_missing_queues=False,
        broker_connection_timeout=CONNECT_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(broker_url, visibility_timeout_seconds)
        | _screening_options(broker_url, message_max_bytes, rejected_messages_max),
        broker_transport=_transport(broker_url),
        worker_send_task_events=events,
        # Only for messages sent through send_task (transports the Redis publisher does not
        # cover): the Redis publisher writes messages itself and sends no task-sent event.
        task_send_sent_event=events,
        enable_utc=True,
    )
    if attempt_time_limit_seconds is not None:
        app.conf.update(
            task_time_limit=attempt_time_limit_seconds,
            task_soft_time_limit=max(
                attempt_time_limit_seconds - SOFT_LIMIT_MARGIN_SECONDS,
                attempt_time_limit_seconds / 2,
            ),
        )
    return app


def _transport(broker_url: str) -> str | None:
    # An explicit transport wins over the URL's scheme in kombu (but for a "redis+socket://"
    # URL, whose prefix names kombu's own Redis transport: not screened).
    if broker_url.startswith("filesystem://"):
        return FILESYSTEM_TRANSPORT
    if broker_url.startswith(("redis://", "rediss://")):
        return REDIS_TRANSPORT
    return None


def _screening_options(
    broker_url: str, message_max_bytes: int, rejected_messages_max: int
) -> dict[str, object]:
    if _transport(broker_url) is None:  # kombu's own transport: it would not know these
        return {}
    return {
        "task_queues": QUEUE_NAMES,
        "message_max_bytes": message_max_bytes,
        "rejected_messages_max": rejected_messages_max,
    }


def _transport_options(broker_url: str, visibility_timeout_seconds: float) -> dict[str, object]:
    options: dict[str, object] = {
        # Bounds kombu's reconnect loop when a producer or inspector (re)connects.
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    }
    if broker_url.startswith("filesystem://"):
        options |= _filesystem_options(Path(urlsplit(broker_url).path))
    # Only Redis knows these (kombu's SQLAlchemy transport, for one, hands every option it does
    # not know to sqlalchemy.create_engine(), which rejects them).
    if broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        options |= {
            # Longer than any run, or Redis hands a running task's message to another worker.
            "visibility_timeout": visibility_timeout_seconds,
            "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        }
    return options


def _filesystem_options(folder: Path) -> dict[str, object]:
    """kombu's filesystem transport, the embedded default: messages are files in `folder`
    (`filesystem://localhost/some/dir`; kombu takes no path from the URL, only these options).

    Its consumers poll: with prefetch 1 a worker takes at most one message per poll, so the
    interval bounds each pool's throughput (10 ms: about 100 tasks/s) and adds at most that
    much latency. See scripts/compare_embedded_brokers.py for why this transport."""
    for sub in ("messages", "control", "rejected"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "messages"),
        "data_folder_out": str(folder / "messages"),
        "control_folder": str(folder / "control"),
        "rejected_folder": str(folder / "rejected"),
        "polling_interval": EMBEDDED_POLLING_SECONDS,
    }

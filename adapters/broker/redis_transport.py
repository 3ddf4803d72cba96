"""kombu's Redis transport, with each item screened before it becomes a message.

kombu's channel pops an item (BRPOP for consumers, RPOP for basic_get) and parses it with
`loads()` on the spot: an item that is not kombu's JSON envelope (`LPUSH high x`) raises out of
the worker's consumer loop, and Celery shuts the worker down. Here the item goes through
`envelope.screen` first; one that fails is pushed onto a capped list `<queue>.rejected` (LPUSH
then LTRIM: newest first, at most `rejected_messages_max` kept), counted and logged once, and
consumption goes on. The two readers below are kombu 5.x's own, but for the screening.

Its QoS (ReleasingQoS) also keeps a worker consuming after an ack that could not reach Redis."""

from __future__ import annotations

from collections.abc import Collection
from queue import Empty
from typing import Any

from kombu.transport import redis, virtual
from kombu.utils.encoding import bytes_to_str

from adapters.broker.envelope import PoisonMessage, screen
from adapters.broker.rejections import REJECTIONS

REJECTED_SUFFIX = ".rejected"


class ReleasingQoS(redis.QoS):
    """kombu's Redis QoS, but a delivery whose ack or reject could not reach Redis is still
    forgotten by the channel.

    kombu removes the delivery from Redis's unacked index first and from the channel's own
    count of deliveries in flight only if that worked. An ack on a connection the server closed
    raises, Celery logs "Couldn't ack" and goes on, and the delivery stays counted for good: with
    prefetch 1 the channel never asks for another message, never touches its dead connection
    again, and the worker stops consuming without a sign (seen in the fault matrix's
    connections-killed scenario; packit/packit-service#2697 shows the same log). Forgotten here,
    the worker's next poll meets the dead connection and reconnects. The message itself stays in
    Redis's unacked index and is restored after the visibility timeout; its task already ran, so
    that copy is a stale dispatch the worker drops."""

    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except BaseException:
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]  # count only
            raise

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        except BaseException:
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
            raise


class ScreeningChannel(redis.Channel):
    QoS = ReleasingQoS

    # Set from the broker's transport options (see create_celery_app).
    task_queues: Collection[str] = ()
    message_max_bytes = 65536
    rejected_messages_max = 1000

    # kombu types its tuple by length; ours is longer by design.
    from_transport_options = (  # type: ignore[assignment]
        *redis.Channel.from_transport_options,
        "task_queues",
        "message_max_bytes",
        "rejected_messages_max",
    )

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # As kombu: disconnect, so the next iteration reconnects.
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]  # type: ignore[no-untyped-call]
            self._queue_cycle.rotate(dest)
            # Raises Empty for a poison: to the poller, as if the BRPOP had timed out.
            self.connection._deliver(self._screened(dest, item), dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]  # as kombu resets it
            # kombu >= 5.7 flushes a pending re-authentication while the connection is idle.
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _get(self, queue: str) -> Any:  # type: ignore[override]
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                while item := client.rpop(self._q_for_pri(queue, pri)):  # type: ignore[no-untyped-call]
                    self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
                    try:
                        return self._screened(queue, item, client)
                    except Empty:
                        continue  # set aside: the next item
            self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
            raise Empty()

    def _screened(self, queue: str, item: bytes, client: Any = None) -> Any:
        """The envelope of `item`; for a poison, Empty once it is set aside."""
        try:
            return screen(
                item,
                task_queue=queue in self.task_queues,
                max_bytes=self.message_max_bytes,
            )
        except PoisonMessage as poison:
            rejected = f"{queue}{REJECTED_SUFFIX}"
            with self.conn_or_acquire(client) as redis_client, redis_client.pipeline() as pipe:
                # kombu's client adds a global key prefix to LPUSH but not to LTRIM.
                pipe.lpush(rejected, item)
                pipe.ltrim(
                    f"{self.global_keyprefix or ''}{rejected}", 0, self.rejected_messages_max - 1
                )
                pipe.execute()
            REJECTIONS.record(queue, poison.reason, f"Redis list {rejected}")
            raise Empty() from None


class ScreeningTransport(redis.Transport):
    Channel = ScreeningChannel


TRANSPORT = f"{__name__}:{ScreeningTransport.__name__}"

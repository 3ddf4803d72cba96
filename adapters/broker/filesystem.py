"""kombu's filesystem transport, made safe for several processes on one folder.

Both ends of kombu's own are racy. It writes a message file in place, under its final name: a
consumer polling the folder can take it before a single byte is written, fail to decode it and
crash its worker. And it takes a message by moving it to the system's temporary folder, which
may be another filesystem: the move is then a copy, and two consumers can both take one
message. Here a message is written under a name no consumer picks up and renamed into place,
and taken by renaming it within its folder: both renames are atomic.

A file that is not a valid message (adapters/broker/envelope.py) would crash kombu's worker
too: it is moved into the `rejected_folder` instead (newest `rejected_messages_max` kept), counted
and logged once, and the next file is taken."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Collection
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from adapters.broker.envelope import PoisonMessage, screen
from adapters.broker.rejections import REJECTIONS


class AtomicChannel(filesystem.Channel):
    # Read from the broker's transport options (see create_celery_app), as kombu's own are.
    @property
    def task_queues(self) -> Collection[str]:
        return tuple(self.transport_options.get("task_queues", ()))

    @property
    def message_max_bytes(self) -> int:
        return int(self.transport_options.get("message_max_bytes", 65536))

    @property
    def rejected_messages_max(self) -> int:
        return int(self.transport_options.get("rejected_messages_max", 1000))

    @property
    def rejected_folder(self) -> str:
        default = os.path.join(self.data_folder_in, os.pardir, "rejected")
        return str(self.transport_options.get("rejected_folder", default))

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # The name kombu's consumers sort and match: "<ms>_<uuid>.<queue>.msg".
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = f"{final}.writing"  # "<queue>.msg.writing" matches no queue
        with open(hidden, "wb") as message:
            message.write(str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]
        os.replace(hidden, final)

    def _get(self, queue: str) -> Any:  # type: ignore[override]
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):  # oldest first, as kombu's
            if name.partition(".")[2] != wanted:
                continue
            source = os.path.join(self.data_folder_in, name)
            taken = f"{source}.taken-{os.getpid()}"  # matches no queue either
            try:
                os.rename(source, taken)
            except FileNotFoundError:  # another consumer took it first
                continue
            try:
                envelope = self._read(queue, taken)
            except PoisonMessage as poison:
                self._set_aside(queue, taken, name, poison.reason)
                continue
            os.remove(taken)
            return envelope
        raise Empty()

    def _read(self, queue: str, path: str) -> Any:
        try:
            with open(path, "rb") as message:
                # One byte more than allowed is enough to know it is too large.
                payload = message.read(self.message_max_bytes + 1)
        except OSError as error:  # a folder named like a message, say
            raise PoisonMessage(f"unreadable ({type(error).__name__})") from None
        return screen(
            payload, task_queue=queue in self.task_queues, max_bytes=self.message_max_bytes
        )

    def _set_aside(self, queue: str, taken: str, name: str, reason: str) -> None:
        folder = self.rejected_folder
        os.makedirs(folder, exist_ok=True)
        # Prefixed with the time, so that the oldest sort first whatever the junk was named.
        os.replace(taken, os.path.join(folder, f"{time.time_ns()}_{name}"))
        for old in sorted(os.listdir(folder))[: -self.rejected_messages_max]:
            path = os.path.join(folder, old)
            try:
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
            except FileNotFoundError:  # another consumer pruned it first
                pass
        REJECTIONS.record(queue, reason, f"folder {folder}")


# Celery's worker on this transport (a blocking loop, not the Redis event loop) drains for 2 s
# at a time and looks at its shutdown flag only between drains; shorter drains let a stopping
# worker notice within this long, at the cost of one more loop turn per slice.
DRAIN_SLICE_SECONDS = 0.2


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicChannel

    # kombu types its two base classes' drain_events differently; this is the virtual one.
    def drain_events(self, connection: Any, timeout: Any = None) -> Any:  # type: ignore[override]
        if timeout is not None:
            timeout = min(timeout, DRAIN_SLICE_SECONDS)
        return super().drain_events(connection, timeout)  # type: ignore[no-untyped-call]


TRANSPORT = f"{__name__}:{AtomicFilesystemTransport.__name__}"

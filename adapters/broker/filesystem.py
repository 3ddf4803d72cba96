"""kombu's filesystem transport, made safe for several processes on one folder.

Both ends of kombu's own are racy. It writes a message file in place, under its final name: a
consumer polling the folder can take it before a single byte is written, fail to decode it and
crash its worker. And it takes a message by moving it to the system's temporary folder, which
may be another filesystem: the move is then a copy, and two consumers can both take one
message. Here a message is written under a name no consumer picks up and renamed into place,
and taken by renaming it within its folder: both renames are atomic."""

from __future__ import annotations

import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


class AtomicChannel(filesystem.Channel):  # type: ignore[misc]
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # The name kombu's consumers sort and match: "<ms>_<uuid>.<queue>.msg".
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = f"{final}.writing"  # "<queue>.msg.writing" matches no queue
        with open(hidden, "wb") as message:
            message.write(str_to_bytes(dumps(payload)))
        os.replace(hidden, final)

    def _get(self, queue: str) -> Any:
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
            with open(taken, "rb") as message:
                payload = message.read()
            os.remove(taken)
            return loads(bytes_to_str(payload))
        raise Empty()


class AtomicFilesystemTransport(filesystem.Transport):  # type: ignore[misc]
    Channel = AtomicChannel


TRANSPORT = f"{__name__}:{AtomicFilesystemTransport.__name__}"

"""kombu's filesystem transport, made safe for several processes on one folder.

kombu writes a message file in place, under its final name: a consumer polling the folder can
take it before a single byte is written, fail to decode it and crash its worker. Here the file
is written under a name no consumer picks up, then renamed into place, which is atomic."""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class AtomicChannel(filesystem.Channel):  # type: ignore[misc]
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # The name kombu's consumers sort and match: "<ms>_<uuid>.<queue>.msg".
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = f"{final}.writing"  # "<queue>.msg.writing" matches no queue
        with open(hidden, "wb") as message:
            message.write(str_to_bytes(dumps(payload)))
        os.replace(hidden, final)


class AtomicFilesystemTransport(filesystem.Transport):  # type: ignore[misc]
    Channel = AtomicChannel


TRANSPORT = f"{__name__}:{AtomicFilesystemTransport.__name__}"

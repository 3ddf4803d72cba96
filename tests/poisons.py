"""Poison messages for the screening tests: raw broker items that are not valid taskman
messages, each with a part of the reason it must be rejected for (adapters/broker/envelope.py).
Most are the message taskman publishes with one thing wrong."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from adapters.broker.redis_publisher import message
from application.ports import Dispatch
from domain.priority import Priority

MESSAGE_MAX_BYTES = 4096
"""The size limit the poisons are meant for (BROKER_MESSAGE_MAX_BYTES)."""


def valid_message(
    dispatches: int = 1, **changes: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """A message exactly as taskman publishes it, of `dispatches` dispatches (for tasks that do
    not exist, so that a poison which slips through is harmless), with each change applied."""
    carried = [Dispatch(987654 + i, 1, Priority.HIGH) for i in range(dispatches)]
    envelope: dict[str, Any] = json.loads(message(carried, "high", "gen1@test", str(uuid.uuid4())))
    for change in changes.values():
        change(envelope)
    return envelope


def with_body(body: Any) -> Callable[[dict[str, Any]], None]:
    def change(envelope: dict[str, Any]) -> None:
        envelope["body"] = base64.b64encode(json.dumps(body).encode()).decode()

    return change


def with_args(*args: Any) -> Callable[[dict[str, Any]], None]:
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return with_body([list(args), {}, embed])


def many(pairs: list[list[int]]) -> dict[str, Any]:
    """The one argument of a format-2 message."""
    return {"format": 2, "dispatches": pairs}


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(envelope: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = envelope
        for parent in parents:
            node = node[parent]
        node[last] = value

    return change


def raw(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


# name: (the raw item, a part of the logged reason)
POISONS: dict[str, tuple[bytes, str]] = {
    "not json": (b"x", "not JSON"),
    "a json list": (b"[1,2,3]", "not a JSON object"),
    "an empty object": (b"{}", "no properties"),
    "not utf-8": (b"\xff\xfe\x00junk", "not UTF-8"),
    "no delivery tag": (raw(valid_message(c=setting("properties.delivery_tag", None))), "tag"),
    "unknown task": (raw(valid_message(c=setting("headers.task", "os.system"))), "unknown task"),
    "no task name": (raw(valid_message(c=setting("headers", {}))), "unknown task"),
    "one argument": (
        raw(valid_message(c=with_args(1))),
        "2 arguments (task id, dispatch number), got 1",
    ),
    "three arguments": (raw(valid_message(c=with_args(1, 2, 3))), "got 3"),
    "string arguments": (raw(valid_message(c=with_args("1", "2"))), "argument 1 is a str"),
    "float arguments": (raw(valid_message(c=with_args(1.0, 2.0))), "argument 1 is a float"),
    "boolean argument": (raw(valid_message(c=with_args(1, True))), "argument 2 is a bool"),
    "huge argument": (raw(valid_message(c=with_args(2**70, 1))), "argument 1 is out of range"),
    "format 2, stale format": (
        raw(valid_message(c=with_args({"format": 9, "dispatches": [[1, 1]]}))),
        "unknown message format",
    ),
    "format 2, a task twice": (
        raw(valid_message(c=with_args(many([[1, 1], [1, 2]])))),
        "a task id appears twice",
    ),
    "format 2, a bad entry": (
        raw(valid_message(c=with_args(many([[1, 1], [2, 1.5]])))),
        "dispatch 2: value 2 is a float",
    ),
    "keyword arguments": (
        raw(valid_message(c=with_body([[1, 1], {"x": 1}, None]))),
        "keyword arguments",
    ),
    "body not a list": (raw(valid_message(c=with_body({"args": [1, 1]}))), "body is not"),
    "an eta": (raw(valid_message(c=setting("headers.eta", "soon"))), "eta"),
    "pickle content type": (
        raw(valid_message(c=setting("content-type", "application/x-python-serialize"))),
        "content type",
    ),
    "latin-1 content encoding": (
        raw(valid_message(c=setting("content-encoding", "latin-1"))),
        "content encoding",
    ),
    "bad base64": (raw(valid_message(c=setting("body", "%%% not base64 %%%"))), "not base64"),
    "body not json": (
        raw(valid_message(c=setting("body", base64.b64encode(b"nope").decode()))),
        "body is not",
    ),
    "oversized": (
        raw(valid_message(c=setting("headers.padding", "x" * MESSAGE_MAX_BYTES))),
        f"larger than {MESSAGE_MAX_BYTES} bytes",
    ),
}

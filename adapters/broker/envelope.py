"""What a valid message on a broker queue is, checked before kombu or Celery touch it.

kombu's virtual transports parse each raw item into an envelope (JSON: body, headers,
properties) before Celery sees a message, and an item they cannot parse raises out of the
worker's consumer loop: Celery calls that unrecoverable and shuts the worker down. So the
transports (adapters/broker/redis_transport.py, adapters/broker/filesystem.py) screen each raw
item here first and set aside what fails, with the short reason `PoisonMessage` carries.

On taskman's task queues only one message is valid: the one its publishers write (protocol 2,
JSON, base64 body, task `taskman.execute`, no eta), whose args are one of the message formats
(`dispatches_of`). On any other queue (Celery's pidbox replies) the envelope must only be one
kombu can take."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

EXECUTE_TASK = "taskman.execute"
"""The one Celery task: run an attempt of (task id, dispatch number)."""

FORMAT_MANY = 2
"""The message format that carries several dispatches (format 1: args `(task id, dispatch
number)`, one dispatch)."""

MAX_DISPATCHES = 500
"""The most dispatches one message may carry: MESSAGE_MAX_TASKS is at most this, and a message
of this many dispatches of the largest ids still fits the default BROKER_MESSAGE_MAX_BYTES."""

# A task id and a dispatch number are BIGINTs; 0 names no task, which the claim drops as stale.
_ID_RANGE = range(0, 2**63)
_NAME_SHOWN = 40  # characters of a bad name or type quoted in a reason


class PoisonMessage(ValueError):
    """A raw broker item that is not a valid message; `reason` is short and quotes no more of
    the payload than a clipped name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def screen(raw: bytes | str, *, task_queue: bool, max_bytes: int) -> dict[str, Any]:
    """The envelope of `raw` (a JSON object: body, headers, properties, content-type,
    content-encoding), as kombu's transports would parse it.

    `task_queue`: whether `raw` came off one of taskman's task queues (the whole taskman message
    is checked) or another queue (only what kombu needs). `max_bytes`: the largest item
    accepted, in bytes of its encoded form.

    Raises PoisonMessage with the first reason found."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise PoisonMessage(f"larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PoisonMessage("not UTF-8") from None
    try:
        envelope = json.loads(text)
    except ValueError:
        raise PoisonMessage("not JSON") from None
    if not isinstance(envelope, dict):
        raise PoisonMessage(f"not a JSON object but a {_type(envelope)}")
    body = _kombu_body(envelope)
    if task_queue:
        _check_task(envelope, body)
    return envelope


def _kombu_body(envelope: dict[str, Any]) -> bytes | None:
    """What kombu's virtual Message and the Redis QoS read unguarded; the decoded body."""
    properties = envelope.get("properties")
    if not isinstance(properties, dict):
        raise PoisonMessage("no properties object")
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        raise PoisonMessage("no delivery tag")
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not _all_str(info.get("exchange"), info.get("routing_key")):
        raise PoisonMessage("no delivery info (exchange, routing key)")
    if not isinstance(envelope.get("headers", {}), dict):
        raise PoisonMessage("headers are not an object")
    body = envelope.get("body")
    if not body:  # kombu leaves an empty body as it is
        return None
    if not isinstance(body, str):
        raise PoisonMessage(f"body is a {_type(body)}, not a string")
    encoding = properties.get("body_encoding")
    if encoding is None:
        return body.encode()
    if encoding != "base64":
        raise PoisonMessage(f"body encoding {_clip(encoding)} is not base64")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise PoisonMessage("body is not base64") from None


def _check_task(envelope: dict[str, Any], body: bytes | None) -> None:
    if envelope.get("content-type") != "application/json":
        raise PoisonMessage(
            f"content type {_clip(envelope.get('content-type'))} is not application/json"
        )
    if envelope.get("content-encoding") != "utf-8":
        raise PoisonMessage(
            f"content encoding {_clip(envelope.get('content-encoding'))} is not utf-8"
        )
    headers: dict[str, Any] = envelope.get("headers") or {}
    if headers.get("task") != EXECUTE_TASK:
        raise PoisonMessage(f"unknown task {_clip(headers.get('task'))}")
    if not isinstance(headers.get("id"), str) or not headers["id"]:
        raise PoisonMessage("no task id")
    # taskman's delays live in PostgreSQL: an eta or expiry is never taskman's, and a malformed
    # one (or a time limit, or a shadow name) would be Celery's to choke on.
    for name in ("eta", "expires", "shadow"):
        if headers.get(name) is not None:
            raise PoisonMessage(f"carries {name} (taskman sets none)")
    if headers.get("timelimit") not in (None, [None, None]):
        raise PoisonMessage("carries a time limit (taskman sets none)")
    try:
        decoded = json.loads(body.decode("utf-8")) if body is not None else None
    except ValueError:  # UnicodeDecodeError included
        raise PoisonMessage("body is not UTF-8 JSON") from None
    if not isinstance(decoded, list) or len(decoded) != 3:
        raise PoisonMessage("body is not [args, kwargs, embed]")
    args, kwargs, embed = decoded
    if kwargs != {}:
        raise PoisonMessage("keyword arguments (taskman sends none)")
    if not isinstance(embed, dict | None):
        raise PoisonMessage("body's embed is not an object")
    dispatches_of(args)


def dispatches_of(args: Any) -> list[tuple[int, int]]:
    """The `(task id, dispatch number)` pairs a message's args carry, in their order, in either
    format:

    - format 1, one dispatch: args `[task id, dispatch number]`;
    - format 2, 1 to MAX_DISPATCHES dispatches: args `[{"format": 2, "dispatches": [[task id,
      dispatch number], ...]}]`, no task id twice.

    Every id and number is an int (not a bool, a float or a numeric string) in 0..2^63-1.
    Raises PoisonMessage otherwise."""
    if not isinstance(args, list | tuple):
        raise PoisonMessage(f"arguments are a {_type(args)}, not a list")
    if len(args) == 1 and isinstance(args[0], dict):
        return _format_many(args[0])
    if len(args) != 2:
        raise PoisonMessage(f"expected 2 arguments (task id, dispatch number), got {len(args)}")
    return [_dispatch(args, "argument ")]


def _format_many(content: dict[str, Any]) -> list[tuple[int, int]]:
    if set(content) != {"format", "dispatches"}:
        raise PoisonMessage("format 2 arguments are not {format, dispatches}")
    if type(content["format"]) is not int or content["format"] != FORMAT_MANY:
        raise PoisonMessage(f"unknown message format {_clip(content['format'])}")
    entries = content["dispatches"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_DISPATCHES:
        raise PoisonMessage(f"dispatches are not a list of 1 to {MAX_DISPATCHES}")
    dispatches = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, list) or len(entry) != 2:
            raise PoisonMessage(f"dispatch {index} is not [task id, dispatch number]")
        dispatches.append(_dispatch(entry, f"dispatch {index}: value "))
    if len({task_id for task_id, _ in dispatches}) != len(dispatches):
        raise PoisonMessage("a task id appears twice")
    return dispatches


def _dispatch(values: list[Any] | tuple[Any, ...], what: str) -> tuple[int, int]:
    for position, value in enumerate(values, start=1):
        if type(value) is not int:  # a bool is an int to isinstance
            raise PoisonMessage(f"{what}{position} is a {_type(value)}, not an integer")
        if value not in _ID_RANGE:
            raise PoisonMessage(f"{what}{position} is out of range (0..2^63-1)")
    return values[0], values[1]


def _all_str(*values: object) -> bool:
    return all(isinstance(value, str) for value in values)


def _type(value: object) -> str:
    return type(value).__name__[:_NAME_SHOWN]


def _clip(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= _NAME_SHOWN else f"{shown[: _NAME_SHOWN - 3]}..."

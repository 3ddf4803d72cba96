"""The screen every raw broker item goes through (adapters/broker/envelope.py): it lets through
exactly what taskman publishes, and names a short reason for each poison."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.broker.envelope import MAX_DISPATCHES, PoisonMessage, dispatches_of, screen
from tests.poisons import MESSAGE_MAX_BYTES, POISONS, many, raw, valid_message


def test_what_taskman_publishes_passes_as_it_is() -> None:
    envelope = valid_message()
    assert screen(raw(envelope), task_queue=True, max_bytes=MESSAGE_MAX_BYTES) == envelope


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
def test_each_poison_is_rejected_with_its_reason(poison: str) -> None:
    item, reason = POISONS[poison]
    with pytest.raises(PoisonMessage) as rejected:
        screen(item, task_queue=True, max_bytes=MESSAGE_MAX_BYTES)
    assert reason in rejected.value.reason
    assert len(rejected.value.reason) < 120  # a reason, not the payload


def test_another_queue_needs_only_an_envelope_kombu_can_take() -> None:
    """Celery's pidbox replies travel on other queues: their task name and body are no
    taskman message, and must pass; what would crash kombu must not."""
    reply = valid_message(c=lambda envelope: envelope.update(headers={}, body=""))
    assert screen(raw(reply), task_queue=False, max_bytes=MESSAGE_MAX_BYTES) == reply
    for item in (b"x", b"[1,2,3]", b"{}", raw(valid_message(c=_no_delivery_info))):
        with pytest.raises(PoisonMessage):
            screen(item, task_queue=False, max_bytes=MESSAGE_MAX_BYTES)


def test_a_message_just_at_the_size_limit_passes() -> None:
    item = raw(valid_message())
    assert screen(item, task_queue=True, max_bytes=len(item))
    with pytest.raises(PoisonMessage, match="larger than"):
        screen(item, task_queue=True, max_bytes=len(item) - 1)


@pytest.mark.parametrize(
    "args", [[1, 2], [0, 1], [2**63 - 1, 1], (5, 6)], ids=["small", "zero", "largest", "tuple"]
)
def test_two_non_negative_int64_arguments_are_valid(args: list[int] | tuple[int, int]) -> None:
    assert dispatches_of(args) == [tuple(args)]


def test_a_message_of_several_dispatches_is_valid_in_format_2() -> None:
    pairs = [[1, 1], [2, 7], [2**63 - 1, 0]]
    assert dispatches_of([many(pairs)]) == [(1, 1), (2, 7), (2**63 - 1, 0)]
    assert dispatches_of([many([[5, 6]])]) == [(5, 6)]
    largest = [[i, 1] for i in range(MAX_DISPATCHES)]
    assert len(dispatches_of([many(largest)])) == MAX_DISPATCHES


def test_taskman_writes_one_dispatch_in_format_1_and_several_in_format_2() -> None:
    """A message of one dispatch stays what every release reads; one of several is format 2."""
    assert json.loads(base64.b64decode(valid_message()["body"]))[0] == [987654, 1]
    several = valid_message(dispatches=3)
    assert json.loads(base64.b64decode(several["body"]))[0] == [
        many([[987654, 1], [987655, 1], [987656, 1]])
    ]
    assert screen(raw(several), task_queue=True, max_bytes=MESSAGE_MAX_BYTES) == several


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"format": 3, "dispatches": [[1, 1]]}, "unknown message format"),
        ({"format": True, "dispatches": [[1, 1]]}, "unknown message format"),
        ({"format": 2}, "not {format, dispatches}"),
        ({"format": 2, "dispatches": [[1, 1]], "x": 1}, "not {format, dispatches}"),
        ({"format": 2, "dispatches": []}, "not a list of 1 to"),
        ({"format": 2, "dispatches": [[1, 1]] * (MAX_DISPATCHES + 1)}, "not a list of 1 to"),
        ({"format": 2, "dispatches": [[1, 1], [1, 2]]}, "a task id appears twice"),
        ({"format": 2, "dispatches": [[1, 1], [2]]}, "dispatch 2 is not [task id"),
        ({"format": 2, "dispatches": [[1, 1], [2, "3"]]}, "dispatch 2: value 2 is a str"),
        ({"format": 2, "dispatches": [[-1, 1]]}, "dispatch 1: value 1 is out of range"),
        ({"format": 2, "dispatches": "[[1, 1]]"}, "not a list of 1 to"),
    ],
)
def test_a_bad_format_2_message_is_refused_with_its_reason(
    content: dict[str, object], reason: str
) -> None:
    with pytest.raises(PoisonMessage) as rejected:
        dispatches_of([content])
    assert reason in rejected.value.reason


@pytest.mark.parametrize(
    "args",
    [[1, -1], [2**63, 1], [1, "2"], [1, 2.0], [False, 1], [1, None], [[1], 2], "12", None],
)
def test_anything_else_is_not(args: object) -> None:
    with pytest.raises(PoisonMessage):
        dispatches_of(json.loads(json.dumps(args)))


def _no_delivery_info(envelope: dict[str, object]) -> None:
    properties = envelope["properties"]
    assert isinstance(properties, dict)
    del properties["delivery_info"]

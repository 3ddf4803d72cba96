"""Which dispatches share a message (adapters/broker/messages.py), and how the Redis publisher
counts the dispatches waiting messages carry from their ids."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.broker import redis_publisher
from adapters.broker.envelope import MAX_DISPATCHES, dispatches_of
from adapters.broker.messages import arguments, split
from application.ports import Dispatch
from domain.priority import Priority

HIGH, LOW = Priority.HIGH, Priority.LOW


def sizes(messages: list[list[Dispatch]]) -> list[int]:
    return [len(message) for message in messages]


def test_a_lone_dispatch_goes_alone_in_format_1() -> None:
    (message,) = split([Dispatch(7, 2, HIGH)], max_tasks=100, spread=2)
    assert arguments(message) == (7, 2)


@pytest.mark.parametrize(
    ("count", "max_tasks", "spread", "expected"),
    [
        (2, 100, 2, [1, 1]),  # as many as the processes that may take them, while there are
        (10, 100, 2, [5, 5]),
        (250, 100, 2, [84, 83, 83]),  # as few as max_tasks allows, evenly
        (500, 100, 1, [100] * 5),
        (7, 1, 4, [1] * 7),  # max_tasks 1: one message per task, as before
    ],
)
def test_dispatches_share_messages_evenly_in_their_order(
    count: int, max_tasks: int, spread: int, expected: list[int]
) -> None:
    dispatches = [Dispatch(i, 1, LOW) for i in range(count)]
    messages = split(dispatches, max_tasks=max_tasks, spread=spread)
    assert sizes(messages) == expected
    assert [d for message in messages for d in message] == dispatches


def test_each_priority_gets_messages_of_its_own() -> None:
    dispatches = [Dispatch(1, 1, LOW), Dispatch(2, 1, HIGH), Dispatch(3, 1, LOW)]
    messages = split(dispatches, max_tasks=100, spread=1)
    assert [[d.task_id for d in m] for m in messages] == [[1, 3], [2]]


def test_a_message_size_beyond_what_the_screen_accepts_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tasks"):
        split([], max_tasks=MAX_DISPATCHES + 1, spread=1)


@pytest.mark.parametrize("count", [1, 2, 100, MAX_DISPATCHES])
def test_the_dispatches_a_written_message_carries_are_read_back_from_its_id(count: int) -> None:
    dispatches = [Dispatch(2**63 - 1 - i, 2**62, HIGH) for i in range(count)]
    item = redis_publisher.message(dispatches, "high", "gen1@host", "reply").encode()
    assert redis_publisher._dispatches_in(item, most_per_message=MAX_DISPATCHES) == count
    envelope = json.loads(item)
    assert len(item) < 65536  # BROKER_MESSAGE_MAX_BYTES' default
    body = json.loads(base64.b64decode(envelope["body"]))
    assert dispatches_of(body[0]) == [(d.task_id, d.dispatch_no) for d in dispatches]


def test_an_item_of_unknown_shape_counts_as_the_most_a_message_carries() -> None:
    assert redis_publisher._dispatches_in(b'{"headers": {}}', most_per_message=100) == 100

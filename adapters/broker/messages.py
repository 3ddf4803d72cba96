"""Which dispatches travel together, and the Celery args that carry them.

A message carries one dispatch (format 1, args `(task id, dispatch number)`, what every release
has read) or several (format 2, see `adapters.broker.envelope.dispatches_of`). Dispatches
published together on one queue share messages: at most `max_tasks` per message, spread over at
least `spread` messages (the worker processes that may take them) while there are that many
dispatches, so a backlog costs a worker one Celery message per chunk instead of per task and a
short group still runs in parallel. Nothing waits for company: a lone dispatch goes alone, at
once, in format 1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.broker.envelope import FORMAT_MANY, MAX_DISPATCHES
from application.ports import Dispatch
from domain.priority import Priority

_REPR_SHOWN = 120  # characters of a format-2 message's args shown as its argsrepr


def split(dispatches: Sequence[Dispatch], *, max_tasks: int, spread: int) -> list[list[Dispatch]]:
    """The messages that carry `dispatches`: per priority (in order of first appearance), as
    few as `max_tasks` allows but at least `min(count, spread)`, sized evenly, the dispatches'
    order kept (so a queue still delivers them first in, first out)."""
    if not 1 <= max_tasks <= MAX_DISPATCHES:
        raise ValueError(f"max_tasks must be 1..{MAX_DISPATCHES}, not {max_tasks}")
    by_queue: dict[Priority, list[Dispatch]] = {}
    for dispatch in dispatches:
        by_queue.setdefault(dispatch.priority, []).append(dispatch)
    messages: list[list[Dispatch]] = []
    for group in by_queue.values():
        count = max(-(-len(group) // max_tasks), min(len(group), max(spread, 1)))
        size, larger = divmod(len(group), count)
        start = 0
        for index in range(count):
            end = start + size + (1 if index < larger else 0)
            messages.append(group[start:end])
            start = end
    return messages


def arguments(dispatches: Sequence[Dispatch]) -> tuple[Any, ...]:
    """The Celery args of one message: format 1 for a single dispatch, else format 2."""
    for dispatch in dispatches:
        if type(dispatch.task_id) is not int or type(dispatch.dispatch_no) is not int:
            raise TypeError(f"a dispatch is two integers, not {dispatch!r}")  # nor bools
    if len(dispatches) == 1:
        return (dispatches[0].task_id, dispatches[0].dispatch_no)
    pairs = [[d.task_id, d.dispatch_no] for d in dispatches]
    return ({"format": FORMAT_MANY, "dispatches": pairs},)


def arguments_repr(dispatches: Sequence[Dispatch]) -> str:
    """What Flower and worker logs show of the args (Celery's argsrepr), clipped."""
    if len(dispatches) == 1:
        return f"({dispatches[0].task_id}, {dispatches[0].dispatch_no})"
    shown = " ".join(f"{d.task_id}.{d.dispatch_no}" for d in dispatches)
    if len(shown) > _REPR_SHOWN:
        shown = f"{shown[: _REPR_SHOWN - 3]}..."
    return f"({len(dispatches)} dispatches: {shown})"

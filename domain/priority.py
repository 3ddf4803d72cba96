"""Priorities, their queues and their start delays."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum


class Priority(IntEnum):
    HIGH = 1
    MEDIUM = 2
    LOW = 3

    @property
    def queue_name(self) -> str:
        return _QUEUE_NAMES[self]


_QUEUE_NAMES = {Priority.HIGH: "high", Priority.MEDIUM: "medium", Priority.LOW: "low"}

DEFAULT_START_DELAYS = {
    Priority.HIGH: timedelta(0),
    Priority.MEDIUM: timedelta(seconds=5),
    Priority.LOW: timedelta(seconds=10),
}


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """How long after creation (or a priority change) a task of each priority becomes eligible."""

    delays: dict[Priority, timedelta] = field(default_factory=lambda: dict(DEFAULT_START_DELAYS))

    def delay_for(self, priority: Priority) -> timedelta:
        return self.delays[priority]

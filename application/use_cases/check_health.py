from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from application.ports import QueueUnavailable, TaskQueue, UnitOfWork
from domain.priority import Priority

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthReport:
    database: str
    broker: str
    consumers: dict[Priority, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """The store and the broker answer: tasks are accepted and kept."""
        return self.database == "ok" and self.broker == "ok"

    @property
    def without_consumer(self) -> list[Priority]:
        """The priorities, highest first, whose queue no worker consumes: their tasks are
        accepted but do not run. Empty when the broker cannot count its consumers (unknown is
        not none)."""
        return [p for p in Priority if self.consumers and not self.consumers.get(p, 0)]

    @property
    def ready(self) -> bool:
        """Healthy, and every priority's tasks will run."""
        return self.healthy and not self.without_consumer


class CheckHealth:
    """Asks the store and the broker for real, and the broker how many workers consume each
    priority's queue. The report says whether tasks are kept (`healthy`) and whether every
    priority's tasks run (`ready`); the caller decides what each means to it."""

    def __init__(self, uow: UnitOfWork, queue: TaskQueue) -> None:
        self._uow = uow
        self._queue = queue

    def execute(self) -> HealthReport:
        database = _probe(self._uow.ping)
        consumers: dict[Priority, int] = {}

        def broker_probe() -> None:
            consumers.update(self._queue.consumers())

        broker = _probe(broker_probe)
        return HealthReport(database, broker, consumers)


def _probe(check: Callable[[], None]) -> str:
    try:
        check()
    except QueueUnavailable as error:
        # Its message names the broker's host:port and the reason, never a credential (the
        # port's promise): what an operator reading the 503 needs to act.
        log.warning("health probe failed: %s", error)
        return f"unavailable: {error}"
    except Exception as error:  # health reports the failure instead of raising it
        # The answer is public: it names the kind of failure, the log keeps hosts and ports.
        log.warning("health probe failed: %s: %s", type(error).__name__, error)
        return f"unavailable: {type(error).__name__}"
    return "ok"

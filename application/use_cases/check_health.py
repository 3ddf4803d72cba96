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
        return self.database == "ok" and self.broker == "ok"


class CheckHealth:
    """Asks the store and the broker for real. Healthy when both answer; how many workers
    consume each priority's queue is reported but does not decide health (a deploy may scale a
    pool to zero on purpose)."""

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

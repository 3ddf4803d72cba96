"""Messages set aside as poison: counted per queue, and logged once each.

The count lives in the process whose transport screened the message (a worker's main process,
which consumes for its pool), readable by whatever reports on that process: each log line
carries the running total, and `REJECTIONS.counts()` gives them per queue."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

log = logging.getLogger("taskman.broker")


class Rejections:
    """A thread-safe count of rejected messages per queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, queue: str, reason: str, where: str) -> int:
        """Count one message rejected on `queue` and log it (queue, reason, and where it was
        set aside: never the payload). The number rejected in this process so far."""
        with self._lock:
            self._counts[queue] += 1
            total = self._counts.total()
        log.warning(
            "[%s] rejected a message: %s; set aside in %s (%d rejected by this process)",
            queue,
            reason,
            where,
            total,
        )
        return total

    def counts(self) -> Mapping[str, int]:
        """Messages rejected so far in this process, per queue."""
        with self._lock:
            return dict(self._counts)


REJECTIONS = Rejections()

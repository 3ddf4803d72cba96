"""`python -m entrypoints.dispatcher`: publishes due tasks and repairs what the broker lost.

Each round (see DispatchDue) returns running tasks whose lease expired to queued, republishes
queued tasks whose message was lost, and publishes tasks whose start time has come. A round that
published a full batch is followed by another at once; otherwise the loop sleeps
DISPATCHER_POLL_SECONDS. About once a second a round also deletes a batch of expired idempotency
keys, and the retention deletes a batch of each finished status older than its
RETENTION_*_SECONDS and folds the task counts (more often while more are waiting). An outage of
the store or the broker is logged and waited out. Several dispatchers may run at once: every
selection skips rows another one holds (SKIP LOCKED).
SIGTERM or SIGINT stops it after the current round."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from application.use_cases import PruneFinishedTasks, PruneIdempotencyKeys
from application.use_cases.dispatch_due import DispatchDue, DispatchReport
from entrypoints.container import Container

log = logging.getLogger("taskman.dispatcher")

OUTAGE_BACKOFF_MIN_SECONDS = 0.5
OUTAGE_BACKOFF_MAX_SECONDS = 5.0
# Expired keys need no promptness (an expired key is already free to the API): one short
# transaction a second, not one per round, spares the store (SQLite's one write lock above all).
PRUNE_EVERY_SECONDS = 1.0


class DispatcherLoop:
    def __init__(
        self,
        dispatch_due: DispatchDue,
        *,
        poll_seconds: float,
        batch_size: int,
        prune_keys: PruneIdempotencyKeys | None = None,
        prune_tasks: PruneFinishedTasks | None = None,
    ) -> None:
        self._dispatch_due = dispatch_due
        self._prune_keys = prune_keys
        self._prune_tasks = prune_tasks
        self._next_prune = 0.0
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._backoff = OUTAGE_BACKOFF_MIN_SECONDS

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        log.info("dispatcher running (poll every %ss)", self._poll_seconds)
        while not self._stopping.is_set():
            self._stopping.wait(self._pause_after(self._round()))
        log.info("dispatcher stopped")

    def _round(self) -> DispatchReport | None:
        try:
            report = self._dispatch_due.execute()
            self._prune()
            return report
        except Exception as error:  # the store is down (or worse): log it, wait, try again
            if self._backoff == OUTAGE_BACKOFF_MIN_SECONDS:  # the first failure of a streak
                log.exception("dispatch round failed; retrying in %.1fs", self._backoff)
            else:
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                log.error(
                    "dispatch round failed again (%s); retrying in %.1fs", first_line, self._backoff
                )
            return None

    def _prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        more = False  # a full batch means more are waiting: prune again next round
        if self._prune_keys is not None:
            pruned = self._prune_keys.execute()
            if pruned:
                log.info("pruned %d expired idempotency keys", pruned)
            more = pruned >= self._batch_size
        if self._prune_tasks is not None:
            removed = self._prune_tasks.execute()
            # One line per round; at DEBUG when nothing was due, not to flood the log each second.
            log.log(
                logging.INFO if any(removed.values()) else logging.DEBUG,
                "retention removed %d finished tasks (%s)",
                sum(removed.values()),
                ", ".join(f"{status.value} {n}" for status, n in removed.items()) or "none due",
            )
            more = more or any(n >= self._batch_size for n in removed.values())
        if not more:
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS

    def _pause_after(self, report: DispatchReport | None) -> float:
        if report is None or not report.broker_available:
            if report is not None:
                log.warning("broker unavailable; retrying in %.1fs", self._backoff)
            pause = self._backoff
            self._backoff = min(self._backoff * 2, OUTAGE_BACKOFF_MAX_SECONDS)
            return pause
        self._backoff = OUTAGE_BACKOFF_MIN_SECONDS
        if report.published or report.republished_lost or report.expired_leases:
            log.info(
                "published %d due, republished %d lost, requeued %d with expired lease",
                report.published,
                report.republished_lost,
                report.expired_leases,
            )
        return 0.0 if report.published >= self._batch_size else self._poll_seconds


def main() -> None:
    container = Container()
    settings = container.settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded defaults live there
    loop = DispatcherLoop(
        container.dispatch_due(),
        poll_seconds=settings.dispatcher_poll_seconds,
        batch_size=settings.dispatcher_batch_size,
        prune_keys=container.prune_idempotency_keys(),
        prune_tasks=container.prune_finished_tasks(),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run()


if __name__ == "__main__":
    main()

"""`python -m entrypoints.dispatcher`: publishes due tasks and repairs what the broker lost.

Each round (see DispatchDue) returns running tasks whose lease expired to queued, republishes
queued tasks whose message was lost, and publishes tasks whose start time has come. A round that
published a full batch is followed by another at once; otherwise the loop sleeps
DISPATCHER_POLL_SECONDS, or less if a delayed task comes due sooner (it is published as its
start time comes, not up to a poll later).

Maintenance runs beside the rounds, on a thread of its own, so a round never waits for it (a
round held up by a retention batch would publish its due tasks late): about once a second it
deletes a batch of expired idempotency keys, and the retention deletes a batch of each finished
status older than its RETENTION_*_SECONDS and folds the task counts (at once again while more are
waiting). An outage of the store or the broker is waited out and logged in two lines: one when
rounds start failing, one when they succeed again (the failures in between only at DEBUG, so a
restart of PostgreSQL is not a page of tracebacks); maintenance logs its own outage the same
way. Several dispatchers may run at once: every selection skips rows another one holds (SKIP
LOCKED).
SIGTERM or SIGINT stops it after the current round and maintenance pass."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from types import FrameType

from application.ports import Metrics, NullMetrics
from application.use_cases import PruneFinishedTasks, PruneIdempotencyKeys
from application.use_cases.dispatch_due import DispatchDue, DispatchReport
from entrypoints.container import Container
from entrypoints.observability import configure_logging, serve_metrics

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
        metrics: Metrics | None = None,
        prune_tasks: PruneFinishedTasks | None = None,
    ) -> None:
        self._dispatch_due = dispatch_due
        self._maintenance = MaintenanceLoop(prune_keys, prune_tasks, batch_size=batch_size)
        self._metrics = metrics or NullMetrics()
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._backoff = OUTAGE_BACKOFF_MIN_SECONDS
        # The running outage: when its first failed round was, and how many rounds failed.
        self._outage_since: float | None = None
        self._failed_rounds = 0

    def stop(self) -> None:
        self._stopping.set()
        self._maintenance.stop()

    def run(self) -> None:
        log.info("dispatcher running (poll every %ss)", self._poll_seconds)
        maintenance = threading.Thread(target=self._maintenance.run, name="maintenance")
        maintenance.start()
        try:
            while not self._stopping.is_set():
                self._stopping.wait(self._pause_after(self._round()))
        finally:
            self._maintenance.stop()
            maintenance.join()
        log.info("dispatcher stopped")

    def _round(self) -> DispatchReport | None:
        started = time.perf_counter()
        try:
            report = self._dispatch_due.execute()
        except Exception as error:  # the store is down (or worse): log it, wait, try again
            self._failed("dispatch round failed", _first_line(error))
            return None
        self._metrics.dispatch_round(
            time.perf_counter() - started,
            published=report.published,
            republished_lost=report.republished_lost,
            expired_leases=report.expired_leases,
        )
        return report

    def _failed(self, what: str, why: str) -> None:
        self._failed_rounds += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            # The reason's first line is enough to act on; a traceback per outage is not.
            log.error(
                "%s (%s); retrying every %.1f-%.1fs until it succeeds",
                what,
                why,
                OUTAGE_BACKOFF_MIN_SECONDS,
                OUTAGE_BACKOFF_MAX_SECONDS,
            )
        else:
            log.debug("%s again (%s); retrying in %.1fs", what, why, self._backoff)

    def _recovered(self) -> None:
        if self._outage_since is not None:
            log.info(
                "dispatch rounds succeed again after %d failed in %.1fs",
                self._failed_rounds,
                time.monotonic() - self._outage_since,
            )
        self._outage_since = None
        self._failed_rounds = 0

    def _pause_after(self, report: DispatchReport | None) -> float:
        if report is None or not report.broker_available:
            if report is not None:
                self._failed("broker unavailable", "nothing can be published")
            pause = self._backoff
            self._backoff = min(self._backoff * 2, OUTAGE_BACKOFF_MAX_SECONDS)
            return pause
        self._backoff = OUTAGE_BACKOFF_MIN_SECONDS
        self._recovered()
        if report.published or report.republished_lost or report.expired_leases:
            log.info(
                "published %d due, republished %d lost, requeued %d with expired lease",
                report.published,
                report.republished_lost,
                report.expired_leases,
            )
        if report.published >= self._batch_size:
            return 0.0
        if report.next_due_in_seconds is not None:
            return min(self._poll_seconds, report.next_due_in_seconds)
        return self._poll_seconds


class MaintenanceLoop:
    """The dispatcher's housekeeping, on its own thread: a pass about every PRUNE_EVERY_SECONDS
    (at once again after a pass that found a full batch, so a backlog drains) deletes a batch of
    expired idempotency keys, and a batch of each finished status past its retention with the
    counts folded. A failed pass is retried a PRUNE_EVERY_SECONDS later; its outage is one line
    when it starts and one when a pass succeeds again."""

    def __init__(
        self,
        prune_keys: PruneIdempotencyKeys | None,
        prune_tasks: PruneFinishedTasks | None,
        *,
        batch_size: int,
    ) -> None:
        self._prune_keys = prune_keys
        self._prune_tasks = prune_tasks
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._failing_since: float | None = None

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        if self._prune_keys is None and self._prune_tasks is None:
            return
        while not self._stopping.is_set():
            try:
                more = self.run_pass()
            except Exception as error:  # the store is down: the rounds' log says so too
                self._failed(_first_line(error))
                more = False
            else:
                self._recovered()
            if not more:
                self._stopping.wait(PRUNE_EVERY_SECONDS)

    def run_pass(self) -> bool:
        """One pass; True when a batch came back full (more are waiting)."""
        more = False
        if self._prune_keys is not None:
            pruned = self._prune_keys.execute()
            if pruned:
                log.info("pruned %d expired idempotency keys", pruned)
            more = pruned >= self._batch_size
        if self._prune_tasks is not None:
            removed = self._prune_tasks.execute()
            # One line per pass; at DEBUG when nothing was due, not to flood the log each second.
            log.log(
                logging.INFO if any(removed.values()) else logging.DEBUG,
                "retention removed %d finished tasks (%s)",
                sum(removed.values()),
                ", ".join(f"{status.value} {n}" for status, n in removed.items()) or "none due",
            )
            more = more or any(n >= self._batch_size for n in removed.values())
        return more

    def _failed(self, why: str) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "maintenance pass failed (%s); retrying every %.1fs", why, PRUNE_EVERY_SECONDS
            )
        else:
            log.debug("maintenance pass failed again (%s)", why)

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info(
                "maintenance passes succeed again after %.1fs",
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def main() -> None:
    container = Container()
    settings = container.settings()
    configure_logging(settings)
    # One process: its metrics stay in memory, served on METRICS_PORT.
    serve_metrics(settings, container.metrics_registry())
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded defaults live there
    loop = DispatcherLoop(
        container.dispatch_due(),
        poll_seconds=settings.dispatcher_poll_seconds,
        batch_size=settings.dispatcher_batch_size,
        prune_keys=container.prune_idempotency_keys(),
        metrics=container.metrics(),
        prune_tasks=container.prune_finished_tasks(),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run()
    # Stopped: skip the interpreter's last garbage collection, which walks every object the
    # imports made (a second on a busy machine) for memory the exit returns anyway.
    gc.freeze()


if __name__ == "__main__":
    main()

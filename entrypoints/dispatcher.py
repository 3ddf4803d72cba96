"""`python -m entrypoints.dispatcher`: publishes due tasks and repairs what the broker lost.

Each round (see DispatchDue) returns running tasks whose lease expired to queued, republishes
queued tasks whose message was lost, and publishes tasks whose start time has come. A round that
published a full batch is followed by another at once; otherwise the loop sleeps
DISPATCHER_POLL_SECONDS. An outage of the store or the broker is logged and waited out. Several
dispatchers may run at once: every selection skips rows another one holds (SKIP LOCKED).
SIGTERM or SIGINT stops it after the current round."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from application.ports import Metrics, NullMetrics
from application.use_cases.dispatch_due import DispatchDue, DispatchReport
from entrypoints.container import Container
from entrypoints.observability import configure_logging, serve_metrics

log = logging.getLogger("taskman.dispatcher")

OUTAGE_BACKOFF_MIN_SECONDS = 0.5
OUTAGE_BACKOFF_MAX_SECONDS = 5.0


class DispatcherLoop:
    def __init__(
        self,
        dispatch_due: DispatchDue,
        *,
        poll_seconds: float,
        batch_size: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._dispatch_due = dispatch_due
        self._metrics = metrics or NullMetrics()
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
        started = time.perf_counter()
        try:
            report = self._dispatch_due.execute()
        except Exception as error:  # the store is down (or worse): log it, wait, try again
            if self._backoff == OUTAGE_BACKOFF_MIN_SECONDS:  # the first failure of a streak
                log.exception("dispatch round failed; retrying in %.1fs", self._backoff)
            else:
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                log.error(
                    "dispatch round failed again (%s); retrying in %.1fs", first_line, self._backoff
                )
            return None
        self._metrics.dispatch_round(
            time.perf_counter() - started,
            published=report.published,
            republished_lost=report.republished_lost,
            expired_leases=report.expired_leases,
        )
        return report

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
    configure_logging(settings)
    # One process: its metrics stay in memory, served on METRICS_PORT.
    serve_metrics(settings, container.metrics_registry())
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded defaults live there
    loop = DispatcherLoop(
        container.dispatch_due(),
        poll_seconds=settings.dispatcher_poll_seconds,
        batch_size=settings.dispatcher_batch_size,
        metrics=container.metrics(),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run()


if __name__ == "__main__":
    main()

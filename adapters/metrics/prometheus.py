"""Metrics on prometheus-client: names `taskman_*`, base units (seconds) in the name.

A process that forks (the Celery prefork pool, several uvicorn workers) runs prometheus-client's
multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` is set before the first metric is built (see
entrypoints/observability.py), every process writes its values to files there, and the one
exposition registry reads them all (`exposition_registry`). Nothing here is built at import time:
each PrometheusMetrics registers its own metrics on the registry it is given."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from application.ports import AttemptResult, Metrics
from domain.priority import Priority
from domain.task import Task, TaskStatus

# Start lateness from 1 ms to 60 s: the contract is "priority 1 at once, 2 after 5 s, 3 after
# 10 s", so the buckets are dense below 100 ms (normal) and still tell 5 s from 10 s from 60 s.
LATENESS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Wait (creation to start) includes the priority's delay, so it reaches further.
WAIT_BUCKETS = (*LATENESS_BUCKETS[:-2], 15.0, 30.0, 60.0, 120.0, 300.0)
RUN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
ROUND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
HTTP_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

UNKNOWN = "unknown"


def _label(priority: Priority | None) -> str:
    return str(int(priority)) if priority is not None else UNKNOWN


class PrometheusMetrics(Metrics):
    """The use cases' metrics, registered on `registry` (a fresh one per instance in tests)."""

    def __init__(self, registry: CollectorRegistry, *, counts_inversions: bool = True) -> None:
        self._counts_inversions = counts_inversions
        self.created = Counter(
            "taskman_tasks_created",
            "Tasks accepted (committed), by priority and type.",
            ["priority", "type"],
            registry=registry,
        )
        self.attempts = Counter(
            "taskman_task_attempts",
            "Attempts by result: success, retried, failed, lost (lease expired before the "
            "outcome was written), stale_dropped (a stale or duplicate message entry, nothing "
            "ran), released (claimed, given back before it began: nothing ran).",
            ["priority", "outcome"],
            registry=registry,
        )
        self.lateness = Histogram(
            "taskman_task_start_lateness_seconds",
            "Claim time minus scheduled_for: how late an attempt started.",
            ["priority"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.wait = Histogram(
            "taskman_task_wait_seconds",
            "Claim time minus created_at: creation to start, the priority's delay included.",
            ["priority"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.run = Histogram(
            "taskman_task_run_seconds",
            "Claim to outcome written, per attempt.",
            ["priority"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.inversions = Counter(
            "taskman_priority_inversions",
            "Attempts of this priority started while a task of a higher priority had been due "
            "and unclaimed for more than 100 ms.",
            ["priority"],
            registry=registry,
        )
        self.round = Histogram(
            "taskman_dispatcher_round_seconds",
            "Duration of one dispatcher round.",
            buckets=ROUND_BUCKETS,
            registry=registry,
        )
        self.published = Counter(
            "taskman_dispatcher_published", "Due tasks published.", registry=registry
        )
        self.republished_lost = Counter(
            "taskman_dispatcher_republished_lost",
            "Queued tasks whose message was lost, published again.",
            registry=registry,
        )
        self.expired_leases = Counter(
            "taskman_dispatcher_expired_leases",
            "Running tasks whose lease expired, requeued or failed.",
            registry=registry,
        )

    @property
    def counts_inversions(self) -> bool:
        return self._counts_inversions

    def tasks_created(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            self.created.labels(_label(task.priority), str(task.type)).inc()

    def attempt_started(
        self, priority: Priority, *, lateness: float, wait: float, inversion: bool
    ) -> None:
        label = _label(priority)
        self.lateness.labels(label).observe(lateness)
        self.wait.labels(label).observe(wait)
        if inversion:
            self.inversions.labels(label).inc()

    def attempt_finished(
        self, priority: Priority | None, result: AttemptResult, run: float
    ) -> None:
        label = _label(priority)
        self.attempts.labels(label, str(result)).inc()
        if result not in (AttemptResult.STALE_DROPPED, AttemptResult.RELEASED):  # nothing ran
            self.run.labels(label).observe(run)

    def dispatch_round(
        self, seconds: float, *, published: int, republished_lost: int, expired_leases: int
    ) -> None:
        self.round.observe(seconds)
        self.published.inc(published)
        self.republished_lost.inc(republished_lost)
        self.expired_leases.inc(expired_leases)


class HttpMetrics:
    """Request count and latency by route template (`/api/v1/tasks/{task_id}`, never the raw
    path, so the label set stays bounded), method and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "taskman_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "taskman_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=HTTP_LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)


class StateCollector(Collector):
    """Gauges read at scrape time: tasks per status and priority, and each queue's messages and
    consumers. `by_status` must be cheap: it reads the exact counts the store keeps, never the
    tasks table. A part that cannot be read is left out of the scrape, which then still
    answers."""

    def __init__(
        self,
        by_status: Callable[[], Mapping[tuple[TaskStatus, Priority], int]],
        pending: Callable[[Priority], int],
        consumers: Callable[[], Mapping[Priority, int]],
    ) -> None:
        self._by_status = by_status
        self._pending = pending
        self._consumers = consumers

    def collect(self) -> Iterable[Metric]:
        yield from self._tasks()
        yield from self._queues()

    def _tasks(self) -> Iterable[Metric]:
        try:
            counts = self._by_status()
        except Exception:  # the store is down: /health says so; the scrape still answers
            return
        gauge = GaugeMetricFamily(
            "taskman_tasks",
            "Tasks by status and priority (exact counts kept by the store).",
            labels=["status", "priority"],
        )
        for status in TaskStatus:
            for priority in Priority:
                gauge.add_metric([str(status), _label(priority)], counts.get((status, priority), 0))
        yield gauge

    def _queues(self) -> Iterable[Metric]:
        try:
            messages = {p: self._pending(p) for p in Priority}
            consumers = self._consumers()
        except Exception:  # the broker is down: /health says so; the scrape still answers
            return
        waiting = GaugeMetricFamily(
            "taskman_queue_messages", "Messages waiting on each queue.", labels=["queue"]
        )
        for priority, count in messages.items():
            waiting.add_metric([priority.queue_name], count)
        yield waiting
        consuming = GaugeMetricFamily(
            "taskman_queue_consumers",
            "Worker pools (Celery nodes) consuming each queue.",
            labels=["queue"],
        )
        for priority in Priority:
            if priority in consumers:  # an empty answer means "unknown", not "none"
                consuming.add_metric([priority.queue_name], consumers[priority])
        yield consuming


def exposition_registry(
    metrics_registry: CollectorRegistry, multiprocess: bool, *extra: Collector
) -> CollectorRegistry:
    """The registry a /metrics endpoint serves: with `multiprocess`, every process's values read
    from their files in PROMETHEUS_MULTIPROC_DIR (the registry the metrics were built on is then
    only where they were declared); otherwise `metrics_registry` itself. Plus `extra`."""
    if multiprocess:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = metrics_registry
    for collector in extra:
        registry.register(collector)
    return registry

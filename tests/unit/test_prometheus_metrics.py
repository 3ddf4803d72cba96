"""The Prometheus adapter: names, labels and buckets of what a scrape shows."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics import LATENESS_BUCKETS, PrometheusMetrics, StateCollector
from application.ports import AttemptResult
from domain.priority import Priority
from domain.task import TaskStatus
from tests.contract.repository_contract import batch, single


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def test_metric_names_labels_and_lateness_buckets() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics.tasks_created([single(priority=Priority.HIGH), batch([(1, 2)])])
    metrics.attempt_started(Priority.LOW, lateness=0.004, wait=10.004, inversion=True)
    metrics.attempt_finished(Priority.LOW, AttemptResult.RETRIED, 0.002)
    metrics.attempt_finished(None, AttemptResult.STALE_DROPPED, 0.0)
    metrics.dispatch_round(0.003, published=5, republished_lost=1, expired_leases=2)
    got = samples(registry)
    assert got[("taskman_tasks_created_total", (("priority", "1"), ("type", "single")))] == 1
    assert got[("taskman_tasks_created_total", (("priority", "2"), ("type", "batch")))] == 1
    assert got[("taskman_task_attempts_total", (("outcome", "retried"), ("priority", "3")))] == 1
    stale = (("outcome", "stale_dropped"), ("priority", "unknown"))
    assert got[("taskman_task_attempts_total", stale)] == 1
    assert got[("taskman_priority_inversions_total", (("priority", "3"),))] == 1
    lateness = "taskman_task_start_lateness_seconds_bucket"
    assert got[(lateness, (("le", "0.0025"), ("priority", "3")))] == 0
    assert got[(lateness, (("le", "0.005"), ("priority", "3")))] == 1
    assert (LATENESS_BUCKETS[0], LATENESS_BUCKETS[-1]) == (0.001, 60.0)
    assert got[("taskman_task_wait_seconds_count", (("priority", "3"),))] == 1
    assert got[("taskman_task_run_seconds_count", (("priority", "3"),))] == 1
    assert got[("taskman_dispatcher_published_total", ())] == 5
    assert got[("taskman_dispatcher_republished_lost_total", ())] == 1
    assert got[("taskman_dispatcher_expired_leases_total", ())] == 2
    assert got[("taskman_dispatcher_round_seconds_count", ())] == 1


def test_state_gauges_show_zeros_and_skip_a_part_that_cannot_be_read() -> None:
    registry = CollectorRegistry()

    def broker_down() -> dict[Priority, int]:
        raise ConnectionError("down")

    registry.register(
        StateCollector(lambda: {(TaskStatus.RUNNING, Priority.LOW): 4}, lambda _: 0, broker_down)
    )
    got = samples(registry)
    assert got[("taskman_tasks", (("priority", "3"), ("status", "running")))] == 4
    assert got[("taskman_tasks", (("priority", "1"), ("status", "queued")))] == 0
    assert not any(name.startswith("taskman_queue") for name, _ in got)

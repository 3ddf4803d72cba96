"""Static checks of the observability profile: Prometheus scrapes every taskman process where it
serves /metrics, and the Grafana dashboard asks only for metrics taskman defines."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from adapters.metrics import HttpMetrics, PrometheusMetrics
from tests.commands import ROOT

LONG_RUNNING_APP = ["api", "worker-high", "worker-medium", "worker-low", "dispatcher"]
# Gauges read at scrape time (StateCollector), not registered up front.
STATE_GAUGES = {"taskman_tasks", "taskman_queue_messages", "taskman_queue_consumers"}


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_prometheus_scrapes_every_process_on_the_port_it_serves() -> None:
    compose = load("docker-compose.yml")["services"]
    targets = {
        target
        for job in load("docker/prometheus/prometheus.yml")["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    expected = set()
    for name in LONG_RUNNING_APP:
        environment = compose[name]["environment"]
        port = environment["PORT"] if name == "api" else environment["METRICS_PORT"]
        expected.add(f"{name}:{port}")
    assert targets == expected
    prometheus = compose["prometheus"]
    mounted = {volume.split(":")[0] for volume in prometheus["volumes"]}
    assert "./docker/prometheus/prometheus.yml" in mounted


def test_the_dashboard_is_provisioned_and_queries_only_taskman_metrics() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    HttpMetrics(registry)
    known = {metric.name for metric in registry.collect()} | STATE_GAUGES
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/taskman.json").read_text())
    queried = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"taskman_\w+", target["expr"])
    }
    assert queried <= known, queried - known
    assert "taskman_task_start_lateness_seconds" in queried
    provider = load("docker/grafana/provisioning/dashboards/taskman.yml")["providers"][0]
    grafana = load("docker-compose.yml")["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if isinstance(volume, str))
    assert mounts["./docker/grafana/dashboards"] == provider["options"]["path"]

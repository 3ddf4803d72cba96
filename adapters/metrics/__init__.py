"""The Metrics port on prometheus-client, and what serves it."""

from adapters.metrics.prometheus import (
    HTTP_LATENCY_BUCKETS,
    LATENESS_BUCKETS,
    HttpMetrics,
    PrometheusMetrics,
    StateCollector,
    exposition_registry,
)

__all__ = [
    "HTTP_LATENCY_BUCKETS",
    "LATENESS_BUCKETS",
    "HttpMetrics",
    "PrometheusMetrics",
    "StateCollector",
    "exposition_registry",
]

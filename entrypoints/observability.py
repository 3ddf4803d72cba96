"""Logs (structlog) and metrics (prometheus-client) for every process: the API, each worker pool,
the dispatcher.

Logs: every record, taskman's and the libraries' (uvicorn, Celery, SQLAlchemy), goes through one
structlog formatter on the root logger, rendered as `LOG_FORMAT` says (`console` or `json`).

Metrics: a process group that forks (a worker pool's prefork children, the API's uvicorn
workers) runs prometheus-client's multiprocess mode in a directory of its own, so that one
/metrics shows the whole group; the dispatcher is one process and keeps its values in memory.
Worker pools and the dispatcher serve /metrics on `METRICS_PORT`; the API on its own port."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, start_http_server, values
from prometheus_client.registry import Collector

from adapters.metrics import PrometheusMetrics, exposition_registry
from application.ports import Metrics, NullMetrics
from entrypoints.settings import Settings

# Libraries' INFO lines that repeat, per attempt, what taskman's one attempt line says.
_PER_ATTEMPT_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


def configure_logging(settings: Settings) -> None:
    """Route every log record through structlog, rendered as console lines or JSON objects."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if settings.log_format == "json":
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "celery"):
        # Their own handlers would print each record a second time, unformatted.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Request lines are taskman's own (ACCESS_LOG, entrypoints/api/metrics.py). uvicorn writes
    # its own whenever this logger has a handler, one reached by propagation included, whatever
    # its access_log option says: at INFO that was a second line per request, on by default,
    # about a fifth of the API's CPU per create.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    for name in _PER_ATTEMPT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def share_metrics_between_processes(settings: Settings) -> None:
    """Turn prometheus-client's multiprocess mode on for this process and every process it will
    fork or spawn, before any of them builds a metric. Its directory is the group's own
    (PROMETHEUS_MULTIPROC_DIR, emptied now; or a fresh temporary one, removed at exit)."""
    if not settings.metrics_enabled:
        return
    if settings.prometheus_multiproc_dir is None:
        directory = Path(tempfile.mkdtemp(prefix="taskman-metrics-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    else:
        directory = settings.prometheus_multiproc_dir
        shutil.rmtree(directory, ignore_errors=True)  # a previous run's values are not ours
        directory.mkdir(parents=True)
    # The library reads its directory from the environment, in this process and in every child
    # (uvicorn's workers are spawned, and read it when they import prometheus-client).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # This process imported prometheus-client already (the container imports the adapter), and
    # the library picks its value class at import: pick again, now that the directory is set.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def multiprocess() -> bool:
    """Whether share_metrics_between_processes turned multiprocess mode on in this group."""
    return values.ValueClass is not values.MutexValue


def build_metrics(settings: Settings, registry: CollectorRegistry) -> Metrics:
    """The use cases' metrics: on `registry`, or NullMetrics with METRICS_ENABLED off."""
    if not settings.metrics_enabled:
        return NullMetrics()
    return PrometheusMetrics(registry)


def serve_metrics(settings: Settings, registry: CollectorRegistry, *extra: Collector) -> None:
    """Serve /metrics on HOST:METRICS_PORT from a background thread, if a port is set."""
    if not settings.metrics_enabled or settings.metrics_port is None:
        return
    served = exposition_registry(registry, multiprocess(), *extra)
    start_http_server(settings.metrics_port, addr=settings.host, registry=served)

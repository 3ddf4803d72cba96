"""taskman's Celery app for Celery's own tools: `celery -A entrypoints.celery_app ...`.

    celery -A entrypoints.celery_app inspect active_queues   # which worker consumes which queue
    celery -A entrypoints.celery_app inspect active          # attempts running now
    celery -A entrypoints.celery_app inspect stats
    celery -A entrypoints.celery_app events                  # task events, live
    celery -A entrypoints.celery_app flower                  # with flower installed

`app` is built on first use, from the same Settings (environment or .env) and the same factory
as the API, the workers and the dispatcher, so the tools talk to the broker taskman uses, with
its transport and its queues. Nothing is built or connected at import time.

Workers are started with `python -m entrypoints.worker --queue ...`, not `celery worker`: this
app registers no task (each pool registers `taskman.execute` with its own container)."""

from __future__ import annotations

from functools import cache

from celery import Celery

from entrypoints.container import Container


@cache
def create_app() -> Celery:
    """The Celery app of this process's Settings, built once."""
    return Container().celery_app()


def __getattr__(name: str) -> Celery:
    # Celery's `-A module` reads `module.app`: built here, on that first read (PEP 562).
    if name == "app":
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

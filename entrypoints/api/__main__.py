"""`python -m entrypoints.api`: serve the API on Settings.port with Settings.api_workers
processes."""

from __future__ import annotations

import gc

import uvicorn

from entrypoints.observability import configure_logging, share_metrics_between_processes
from entrypoints.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    # The workers are processes of their own; one /metrics answers for them all.
    share_metrics_between_processes(settings)
    uvicorn.run(
        "entrypoints.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
        # The request lines (ACCESS_LOG) are taskman's own, with the route template and duration.
        access_log=False,
        # Logging is configured by taskman (entrypoints/observability.py), not by uvicorn.
        log_config=None,
        proxy_headers=True,
    )
    # Stopped: skip the interpreter's last garbage collection, which walks every object the
    # imports made (a second on a busy machine) for memory the exit returns anyway.
    gc.freeze()


if __name__ == "__main__":
    main()

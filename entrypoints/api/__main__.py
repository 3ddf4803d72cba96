"""`python -m entrypoints.api`: serve the API on Settings.port with Settings.api_workers
processes."""

from __future__ import annotations

import gc

import uvicorn

from entrypoints.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "entrypoints.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.api_workers,
        log_level=settings.log_level.lower(),
        # One line per request costs more than the request itself at a thousand requests a second.
        access_log=settings.access_log,
        proxy_headers=True,
    )
    # Stopped: skip the interpreter's last garbage collection, which walks every object the
    # imports made (a second on a busy machine) for memory the exit returns anyway.
    gc.freeze()


if __name__ == "__main__":
    main()

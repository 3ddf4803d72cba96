"""`python -m entrypoints.healthcheck api|worker QUEUE|dispatcher`: exit 0 when healthy.

The containers' HEALTHCHECK commands. Each asks the question that matters for its role:
- api: does GET /api/v1/health/live answer 200? Liveness only: a container check leads to a
  restart (or a dependant waiting), and restarting the API cures neither a store outage nor a
  pool without workers; those show on the postgres, redis and worker containers' own checks,
  and a load balancer asks /api/v1/health/ready.
- worker QUEUE: does a worker of this container, consuming QUEUE, answer a broadcast ping?
- dispatcher: is no task overdue for publication by more than a grace period? (If every
  dispatcher were stuck, due tasks would pile up unpublished.)"""

from __future__ import annotations

import argparse
import socket
import sys
import urllib.request
from datetime import timedelta

from entrypoints.container import Container
from entrypoints.node_names import is_node_of
from entrypoints.settings import Settings

PING_TIMEOUT_SECONDS = 3.0
# A live worker answers a broadcast within milliseconds; the ping always waits this long.
WORKER_PING_SECONDS = 1.0
DISPATCH_GRACE_SECONDS = 10.0


def api_is_healthy(settings: Settings) -> bool:
    url = f"http://127.0.0.1:{settings.port}/api/v1/health/live"
    try:
        # B310 warns of file: URLs; this one is http://127.0.0.1, built above, never input.
        with urllib.request.urlopen(url, timeout=PING_TIMEOUT_SECONDS) as response:  # nosec B310
            return int(response.status) == 200
    except OSError:
        return False


def worker_is_healthy(container: Container, queue: str) -> bool:
    replies = container.celery_app().control.ping(timeout=WORKER_PING_SECONDS) or []
    here = socket.gethostname()
    return any(is_node_of(name, queue, here) for reply in replies for name in reply)


def dispatcher_is_healthy(container: Container, grace: timedelta) -> bool:
    uow = container.uow()
    with uow:
        overdue = uow.tasks.due_for_dispatch(container.clock().now() - grace, limit=1)
    return not overdue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["api", "worker", "dispatcher"])
    parser.add_argument("queue", nargs="?", choices=["high", "medium", "low"])
    parser.add_argument(
        "--grace",
        type=float,
        default=DISPATCH_GRACE_SECONDS,
        help="dispatcher: seconds a due task may wait for publication",
    )
    args = parser.parse_args(argv)
    if args.role == "api":
        return 0 if api_is_healthy(Settings()) else 1
    container = Container()
    if args.role == "worker":
        if args.queue is None:
            parser.error("worker needs its queue: high, medium or low")
        return 0 if worker_is_healthy(container, args.queue) else 1
    return 0 if dispatcher_is_healthy(container, timedelta(seconds=args.grace)) else 1


if __name__ == "__main__":
    sys.exit(main())

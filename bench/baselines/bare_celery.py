"""The stack's ceiling for processing: bare Celery on the same Redis, running a + b, no database.

    python -m bench.baselines.bare_celery worker BROKER_URL --concurrency 2 --loglevel WARNING

It reuses taskman's own Celery app factory and broker adapter, so the worker settings (prefork,
acks_late, reject_on_worker_lost, prefetch 1, no result backend, one queue per priority) and the
publish path are the very ones taskman uses; only the PostgreSQL work is missing. Without a
result backend the only way to know when the last task finished is for each task to count
itself: one Redis INCR, far cheaper than taskman's claim and completion transactions."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import redis
from celery import Celery

from adapters.broker import EXECUTE_TASK, CeleryTaskQueue, create_celery_app
from application.ports import Dispatch
from domain.priority import Priority

DONE_KEY = "bench:bare-celery:done"
QUEUE = Priority.HIGH
VISIBILITY_TIMEOUT_SECONDS = 3600.0
PUBLISH_BATCH = 500

_counter: redis.Redis | None = None


def _done_counter(broker_url: str) -> redis.Redis:
    # One client per worker process, made after the fork.
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(broker_url)
    return _counter


def worker_app(broker_url: str) -> Celery:
    app = create_celery_app(broker_url, visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)

    @app.task(name=EXECUTE_TASK, ignore_result=True)
    def add(a: int, b: int) -> int:
        total = a + b
        _done_counter(broker_url).incr(DONE_KEY)
        return total

    return app


def run_worker(broker_url: str, concurrency: int, loglevel: str) -> None:
    worker_app(broker_url).worker_main(
        argv=[
            "worker",
            f"--queues={QUEUE.queue_name}",
            f"--concurrency={concurrency}",
            f"--hostname=bare-{os.getpid()}@%h",
            f"--loglevel={loglevel}",
            "--pool=prefork",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
    )


def measure(broker_url: str, count: int, *, ready_timeout: float = 60.0) -> dict[str, Any]:
    """Publish `count` messages and time them from the first publish to the last INCR. They go
    out in pipelined batches, as taskman's dispatcher sends them: one at a time, this one
    Python publisher would be the bottleneck and the figure no ceiling at all. A warm-up
    message first proves the worker is consuming."""
    counter = redis.Redis.from_url(broker_url)
    queue = CeleryTaskQueue(create_celery_app(broker_url, visibility_timeout_seconds=3600))
    counter.delete(DONE_KEY)
    queue.publish([Dispatch(0, 0, QUEUE)])
    _wait_for_count(counter, 1, ready_timeout)
    counter.delete(DONE_KEY)

    start = time.perf_counter()
    for first in range(1, count + 1, PUBLISH_BATCH):
        last = min(first + PUBLISH_BATCH, count + 1)
        queue.publish([Dispatch(task_id, 1, QUEUE) for task_id in range(first, last)])
    published_s = time.perf_counter() - start
    _wait_for_count(counter, count, timeout=600)
    seconds = time.perf_counter() - start
    counter.delete(DONE_KEY)
    counter.close()
    return {"tasks": count, "seconds": seconds, "publish_s": published_s, "per_s": count / seconds}


def _wait_for_count(counter: redis.Redis, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(counter.get(DONE_KEY) or 0) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"bare Celery: fewer than {count} tasks done in {timeout} s")
        time.sleep(0.002)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("broker_url")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--loglevel", default="WARNING")
    args = parser.parse_args(argv)
    run_worker(args.broker_url, args.concurrency, args.loglevel)


if __name__ == "__main__":
    main()

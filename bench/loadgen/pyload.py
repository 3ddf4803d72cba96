"""The fallback when wrk cannot be had: processes of threads, one keep-alive connection per
thread, posting the same task body. Python parses every response, so its own ceiling is far
lower than wrk's; the bench says so when it uses it."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlsplit

from bench.stats import percentile

CREATE_PATH = "/api/v1/tasks"


def run(
    base_url: str, *, connections: int, seconds: float, priority: int, count: int = 0
) -> tuple[int, float, list[float], int]:
    """(responses, seconds, latencies in ms, errors); stops at `count` responses if given."""
    processes = max(1, min(connections, os.cpu_count() or 1))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    per_process = -(-count // processes) if count else 0
    start = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        jobs = [
            pool.submit(_process, base_url, share, seconds, priority, per_process)
            for share in shares
        ]
        results = [job.result() for job in jobs]
    elapsed = time.perf_counter() - start
    latencies = [latency for latencies, _ in results for latency in latencies]
    return len(latencies), elapsed, latencies, sum(errors for _, errors in results)


def summary(latencies: list[float]) -> dict[str, float]:
    return {f"p{q}": percentile(latencies, q / 100) or 0.0 for q in (50, 75, 90, 99)}


def _process(
    base_url: str, threads: int, seconds: float, priority: int, limit: int
) -> tuple[list[float], int]:
    address = urlsplit(base_url)
    body = json.dumps({"a": 20, "b": 22, "priority": priority}).encode()
    headers = {"Content-Type": "application/json"}
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def connection_loop() -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                if limit and len(latencies) >= limit:
                    break
            begin = time.perf_counter()
            connection.request("POST", CREATE_PATH, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                latencies.append((time.perf_counter() - begin) * 1000)
                errors[0] += response.status >= 400
        connection.close()

    workers = [threading.Thread(target=connection_loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0]

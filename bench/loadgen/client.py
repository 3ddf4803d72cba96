"""A small HTTP client in a process of its own: steady probes, and the one big batch.

    python -m bench.loadgen.client paced URL --priorities 1 --rate 20 --seconds 10
    python -m bench.loadgen.client batch URL --pairs 100000 --priority 1

Probes are sent one at a time at a fixed pace (not as fast as possible), so they measure the
latency a modest client sees, not a queue they built themselves. Prints one JSON object."""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

CREATE_PATH = "/api/v1/tasks"
BATCH_PATH = "/api/v1/tasks/batch"
HEADERS = {"Content-Type": "application/json"}


def connect(base_url: str) -> http.client.HTTPConnection:
    address = urlsplit(base_url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=120)


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> dict[str, Any]:
    connection.request("POST", path, body=body, headers=HEADERS)
    response = connection.getresponse()
    payload = response.read()
    if response.status != 201:
        raise RuntimeError(f"POST {path}: {response.status} {payload[:300]!r}")
    return json.loads(payload)  # type: ignore[no-any-return]


def paced(base_url: str, priorities: list[int], rate: float, seconds: float) -> dict[str, Any]:
    connection = connect(base_url)
    ids: dict[str, list[int]] = {str(priority): [] for priority in priorities}
    late = 0
    start = time.monotonic()
    for sent, priority in enumerate(itertools.cycle(priorities)):
        due = start + sent / rate
        if due - start >= seconds:
            break
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
        body = json.dumps({"a": sent, "b": 1, "priority": priority}).encode()
        ids[str(priority)].append(post(connection, CREATE_PATH, body)["id"])
    connection.close()
    return {"ids": ids, "late": late}


def batch(base_url: str, pairs: int, priority: int) -> dict[str, Any]:
    body = json.dumps(
        {"pairs": [{"a": i, "b": i + 1} for i in range(pairs)], "priority": priority}
    ).encode()
    connection = connect(base_url)
    sent_at = time.time()
    start = time.perf_counter()
    task = post(connection, BATCH_PATH, body)
    accept_s = time.perf_counter() - start
    connection.close()
    return {"id": task["id"], "sent_at": sent_at, "accept_s": accept_s, "body_bytes": len(body)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    probe = commands.add_parser("paced")
    probe.add_argument("url")
    probe.add_argument("--priorities", type=int, nargs="+", default=[1])
    probe.add_argument("--rate", type=float, default=20.0, help="requests per second")
    probe.add_argument("--seconds", type=float, default=10.0)
    big = commands.add_parser("batch")
    big.add_argument("url")
    big.add_argument("--pairs", type=int, default=100_000)
    big.add_argument("--priority", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "paced":
        result = paced(args.url, args.priorities, args.rate, args.seconds)
    else:
        result = batch(args.url, args.pairs, args.priority)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

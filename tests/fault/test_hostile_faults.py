"""The five faults of issue 10 found by trying taskman as a hostile client would: each scenario
failed on the code before its fix, for the reason named in its docstring."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.fault.harness import Load, conclude, fault_system, repeat_during
from tests.fault.ledger import Ledger
from tests.processes import wait_until


def test_poison_messages(tmp_path: Path) -> None:
    """Junk on a queue is set aside; the worker keeps consuming (fix: poison messages)."""
    ledger = Ledger("poison messages on every queue")
    junk = [
        b"not json at all",
        b'{"body": "bm90IGpzb24=", "headers": {}}',  # an envelope with no task
        json.dumps({"headers": {"task": "taskman.execute"}, "body": "@@@"}).encode(),
        json.dumps(
            {
                "body": "W1siYSIsIG51bGxdLCB7fSwge31d",  # args ["a", null]
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": {"lang": "py", "task": "taskman.execute", "id": "poison"},
                "properties": {"delivery_tag": "poison", "body_encoding": "base64"},
            }
        ).encode(),
        b"\xff\xfe\x00binary",
    ]
    with fault_system(tmp_path) as system:
        workers = [system.processes[f"worker-{q}"] for q in ("high", "medium", "low")]
        pids = [worker.pid for worker in workers]
        load = Load(system, ledger).start()
        broker = system.redis()
        repeat_during(
            load,
            0.5,
            lambda _: [broker.rpush(q, *junk) for q in ("high", "medium", "low")],
            rounds=3,
        )
        load.join()
        verdict = ledger.check(system.database_url)
        assert [w.pid for w in workers] == pids and all(w.running for w in workers)
    conclude(verdict, "11-poison-messages")


def test_priority_change_storm(tmp_path: Path) -> None:
    """Twelve clients PUT priority 1 on the newest tasks, running or queued, as fast as they can
    while tasks are created: no outcome is discarded, so no task runs twice, and each finishes
    once the storm ends (fix: the outcome write is conditional on the claim, not on the row's
    version; moves queue on the row lock)."""
    ledger = Ledger("a priority-change storm: 12 clients PUT priority 1 on the newest tasks")
    with fault_system(tmp_path, TASK_RUN_SECONDS="0.3") as system:
        load = Load(system, ledger, total=60, priorities=(1,)).start()
        stop = threading.Event()

        def storm(offset: int) -> None:
            with system.client() as client:
                while not stop.is_set():
                    newest = ledger.accepted()[-3:]
                    if not newest:
                        time.sleep(0.01)
                        continue
                    created = newest[offset % len(newest)]
                    response = client.put(f"/api/v1/tasks/{created.task_id}", json={"priority": 1})
                    ledger.response(response)

        stormers = [threading.Thread(target=storm, args=(n,), daemon=True) for n in range(12)]
        for stormer in stormers:
            stormer.start()
        load.join()
        stop.set()
        for stormer in stormers:
            stormer.join(10)
        engine = create_engine(system.database_url)
        with engine.connect() as connection:
            wait_until(
                lambda: (
                    connection.execute(
                        text("SELECT count(*) FROM tasks WHERE status NOT IN ('success', 'failed')")
                    ).scalar()
                    == 0
                ),
                120,
                interval=0.2,
                what="every task finished",
            )
            connection.rollback()
        engine.dispose()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "12-priority-storm")


def test_locked_row(tmp_path: Path) -> None:
    """A request on a row another session holds locked answers 503 with Retry-After within a
    bounded wait, never hangs (fix: lock and statement timeouts)."""
    ledger = Ledger("a locked row (another session holds it FOR UPDATE for 20 s)")
    with fault_system(tmp_path, DELAY_LOW_SECONDS="60") as system:
        with system.client() as client:
            response = client.post("/api/v1/tasks", json={"a": 1, "b": 2, "priority": 3})
            ledger.response(response)
            locked_id = response.json()["id"]
        engine = create_engine(system.database_url)
        holder = engine.connect()
        holder.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": locked_id})
        load = Load(system, ledger, total=40, priorities=(1,)).start()
        answers: list[httpx.Response | str] = []
        try:
            with httpx.Client(base_url=system.system.base_url, timeout=10.0) as client:
                for call in (
                    lambda: client.put(f"/api/v1/tasks/{locked_id}", json={"priority": 1}),
                    lambda: client.post(f"/api/v1/tasks/{locked_id}/cancel"),
                ):
                    try:
                        answer = call()
                        ledger.response(answer)
                        answers.append(answer)
                    except httpx.TimeoutException as error:
                        answers.append(f"no answer within 10 s: {error!r}")
            load.join()
        finally:
            holder.rollback()
            holder.close()
            engine.dispose()
        # The lock is gone: the held task can move again, to priority 1, and run like the rest.
        with system.client() as client:
            moved = client.put(f"/api/v1/tasks/{locked_id}", json={"priority": 1})
            assert moved.status_code == 200, moved.text
        for answer in answers:
            assert isinstance(answer, httpx.Response), answer
            assert answer.status_code == 503 and "retry-after" in answer.headers, answer.text
        verdict = ledger.check(system.database_url)
    conclude(verdict, "13-locked-row")


def test_redis_connections_killed(tmp_path: Path) -> None:
    """Every client connection to Redis killed (CLIENT KILL TYPE normal) while tasks are
    created, and /health asked right after each kill: a dead pooled connection is re-established
    once, transparently, so neither a create nor /health answers 503 while Redis is up (fix:
    reconnect once)."""
    ledger = Ledger("Redis connections killed (CLIENT KILL TYPE normal), five times")
    health: list[int] = []
    # /health caches its worker count 5 s: kills 1.2 s apart for 6 s reach past the cache.
    with fault_system(tmp_path) as system:
        load = Load(system, ledger, total=150, priorities=(1,)).start()
        broker = system.redis()

        def kill_then_ask(_: int) -> None:
            broker.client_kill_filter(_type="normal", skipme=True)
            with system.client() as client:
                health.append(client.get("/api/v1/health").status_code)

        repeat_during(load, 1.2, kill_then_ask, rounds=5)
        load.join()
        verdict = ledger.check(system.database_url)
    assert verdict.unavailable == 0, f"{verdict.unavailable} creates answered 503"
    assert health and set(health) == {200}, f"/health after each kill: {health}"
    conclude(verdict, "14-redis-connections-killed")


def raw_post_without_reading(port: int, body: bytes, key: str) -> None:
    """A create whose response is lost: the request is sent whole, the socket closed unread."""
    request = (
        f"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(request + body)
        time.sleep(0.05)  # long enough for the server to read it, not to be read back


def test_client_retry_with_idempotency_key(tmp_path: Path) -> None:
    """A client whose response was lost retries with the same Idempotency-Key: it gets the first
    task back and the store holds one row per key (fix: Idempotency-Key on POST /tasks)."""
    ledger = Ledger("a client retry with Idempotency-Key after a lost response")
    with fault_system(tmp_path) as system:
        with system.client() as client:
            for number in range(20):
                body = {"a": number, "b": 1000, "priority": 1}
                key = f"fault-matrix-{number}"
                raw_post_without_reading(system.system.port, json.dumps(body).encode(), key)
                ledger.create(client, number, 1000, 1, headers={"Idempotency-Key": key})
        verdict = ledger.check(system.database_url)
        engine = create_engine(system.database_url)
        with engine.connect() as connection:
            rows_per_key = connection.execute(
                text("SELECT a, count(*) FROM tasks GROUP BY a HAVING count(*) > 1")
            ).all()
        engine.dispose()
    if rows_per_key:
        verdict.run_twice += len(rows_per_key)
        verdict.problems.append(f"keys created more than one task: {rows_per_key}")
    conclude(verdict, "15-idempotency-key")

"""The fault matrix (issue 10): each fault hits a whole system of its own while clients create
tasks around it; the ledger then checks the tasks table (see ledger.py for the rules).

Every scenario starts its own PostgreSQL cluster and redis-server (tests/fault/harness.py), so
scenarios run side by side and a restart touches nothing else."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.fault.harness import (
    FAULT_SETTINGS,
    FaultSystem,
    Load,
    conclude,
    duplicate_messages,
    fault_system,
    pool_children,
    repeat_during,
)
from tests.fault.ledger import Ledger
from tests.processes import wait_until

LEASE = float(FAULT_SETTINGS["LEASE_SECONDS"])


def running_tasks(system: FaultSystem) -> set[int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(system.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id FROM tasks WHERE status = 'running'"))
            return {row.id for row in rows}
    finally:
        engine.dispose()


def test_redis_flushdb(tmp_path: Path) -> None:
    ledger = Ledger("Redis FLUSHDB, twice under load")
    with fault_system(tmp_path) as system:
        load = Load(system, ledger).start()
        broker = system.redis()
        for accepted in (30, 80):
            load.wait_accepted(accepted)
            broker.flushdb()
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "01-redis-flushdb")


def test_redis_restarted(tmp_path: Path) -> None:
    ledger = Ledger("Redis restarted (SIGTERM, started again on its port, nothing kept)")
    with fault_system(tmp_path) as system:
        load = Load(system, ledger).start()
        load.wait_accepted(40)
        system.redis_server.stop()
        time.sleep(1)
        system.redis_server.start()
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "02-redis-restarted")


def test_postgres_restarted(tmp_path: Path) -> None:
    ledger = Ledger("PostgreSQL restarted (pg_ctl restart -m fast)")
    with fault_system(tmp_path) as system:
        load = Load(system, ledger).start()
        load.wait_accepted(40)
        # Attempts whose outcome falls in the outage are lost and handed on by their leases.
        with ledger.fault():
            system.postgres.restart()
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "03-postgres-restarted")


def test_postgres_refusing_new_connections(tmp_path: Path) -> None:
    ledger = Ledger("PostgreSQL refusing new connections for 2 s (sessions ended)")
    with fault_system(tmp_path) as system:
        load = Load(system, ledger).start()
        load.wait_accepted(40)
        with ledger.fault(), system.postgres.refusing_connections():
            time.sleep(2)
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "04-postgres-refusing")


def test_pool_child_killed(tmp_path: Path) -> None:
    ledger = Ledger("a pool process killed -9 mid-attempt, three times")
    # Attempts of 0.2 s on the high pool only (one pool process): whenever a task is running,
    # that process is in its attempt.
    with fault_system(tmp_path, TASK_RUN_SECONDS="0.2") as system:
        worker = system.processes["worker-high"]
        load = Load(system, ledger, total=50, priorities=(1,)).start()
        load.wait_accepted(5)

        def kill_the_child(_: int) -> None:
            wait_until(lambda: running_tasks(system), 10, what="an attempt in flight")
            # Celery replaces a killed pool process: wait for the replacement before the next kill.
            wait_until(lambda: pool_children(worker), 10, what="a pool process")
            (child,) = pool_children(worker)
            # Every task of the message the child was in is lost with it (claimed at once).
            with ledger.fault():
                os.kill(child, signal.SIGKILL)

        repeat_during(load, 0.6, kill_the_child, rounds=3)
        load.join()
        verdict = ledger.check(system.database_url)
    assert verdict.rerun_after_killed_attempt >= 1, "no kill cut an attempt short"
    conclude(verdict, "05-pool-child-killed")


def test_worker_stopped_past_its_lease_then_resumed(tmp_path: Path) -> None:
    ledger = Ledger("a whole worker SIGSTOPped past its lease, then SIGCONT")
    with fault_system(
        tmp_path, TASK_RUN_SECONDS="0.3", extra={"worker-high-2": "worker-high"}
    ) as system:
        stopped = system.processes["worker-high"]
        load = Load(system, ledger, total=60, priorities=(1,)).start()
        load.wait_accepted(10)
        wait_until(lambda: running_tasks(system), 10, what="attempts in flight")
        # The stopped worker's attempts in flight, however many tasks its message held, are lost
        # and handed on by their leases while it is stopped; the window ends when it resumes.
        with ledger.fault():
            stopped.signal_group(signal.SIGSTOP)
            # A claim it sent just before it stopped still commits: look once that has had time.
            time.sleep(0.3)
            held = running_tasks(system)
            try:
                # Until every attempt running then has been handed to another (lease expired).
                wait_until(
                    lambda: not (held & running_tasks(system)), 4 * LEASE, what="leases expired"
                )
                time.sleep(1)
            finally:
                stopped.signal_group(signal.SIGCONT)
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "06-worker-sigstop")


def test_dispatcher_killed_mid_round_and_restarted(tmp_path: Path) -> None:
    ledger = Ledger("the dispatcher killed -9 mid-round and restarted, every 0.8 s")
    # One task per round: with tasks falling due all the time, rounds follow one another and a
    # kill lands inside one (between recording a publication and pushing its message, say).
    with fault_system(tmp_path, DISPATCHER_BATCH_SIZE="1") as system:
        load = Load(system, ledger, total=160, priorities=(2, 3)).start()
        load.wait_accepted(20)

        def kill_and_restart(_: int) -> None:
            system.processes["dispatcher"].kill()
            system.restart("dispatcher")

        repeat_during(load, 0.8, kill_and_restart, rounds=3)
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "07-dispatcher-killed")


def test_two_dispatchers_one_killed_every_few_seconds(tmp_path: Path) -> None:
    ledger = Ledger("two dispatchers, one of them killed -9 every 1.5 s and restarted")
    with fault_system(
        tmp_path, DISPATCHER_BATCH_SIZE="2", extra={"dispatcher-2": "dispatcher"}
    ) as system:
        load = Load(system, ledger, total=200, priorities=(2, 3, 1)).start()

        def kill_one(round_number: int) -> None:
            name = ("dispatcher", "dispatcher-2")[round_number % 2]
            system.processes[name].kill()
            system.restart(name)

        repeat_during(load, 1.5, kill_one, rounds=3)
        load.join()
        verdict = ledger.check(system.database_url)
    conclude(verdict, "08-two-dispatchers")


def test_api_killed_during_creates(tmp_path: Path) -> None:
    ledger = Ledger("the API process killed -9 during creates, twice, and restarted")
    with fault_system(tmp_path) as system:
        # Enough tasks that the clients are still creating when the API is back, however long
        # its restart takes on a busy machine (a client that gets no answer moves on).
        load = Load(system, ledger, total=600).start()
        for accepted in (30, 60):
            load.wait_accepted(accepted, timeout=90)
            system.processes["api"].kill()
            system.restart("api")
        load.join()
        verdict = ledger.check(system.database_url)
    assert verdict.no_answer > 0, "no client saw the API die"
    conclude(verdict, "09-api-killed")


def test_duplicated_messages(tmp_path: Path) -> None:
    ledger = Ledger("duplicated messages (waiting ones LPUSHed again, in-flight ones RPUSHed)")
    with fault_system(tmp_path) as system:
        load = Load(system, ledger).start()
        broker = system.redis()
        copies = 0

        def duplicate(round_number: int) -> None:
            nonlocal copies
            if round_number < 5:  # each round copies the copies too: a few rounds are plenty
                copies += duplicate_messages(broker, ("high", "medium", "low"))

        repeat_during(load, 0.4, duplicate, rounds=5)
        load.join()
        assert copies > 0, "no message was duplicated"
        verdict = ledger.check(system.database_url)
    conclude(verdict, "10-duplicated-messages")

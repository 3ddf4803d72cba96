"""The dispatcher process rides out outages of the broker and of the store, then catches up;
SIGTERM stops it cleanly. Each scenario has a store and a broker of its own."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.sql.migrations import upgrade_to_head
from domain.priority import Priority
from domain.task import TaskStatus
from tests.fault.servers import own_postgres
from tests.integration.celery_stack import (
    CeleryStack,
    OwnRedisServer,
    celery_stack,
    redis_database,
)
from tests.integration.databases import connect_admin

pytestmark = pytest.mark.integration


def test_tasks_accepted_while_the_broker_is_down_run_once_it_is_back(tmp_path: Path) -> None:
    server = OwnRedisServer(tmp_path)
    server.start()
    try:
        with celery_stack(tmp_path, broker_url=server.url) as stack:
            dispatcher = stack.dispatcher()
            stack.worker("high")

            server.stop()
            tasks = [stack.create(Priority.HIGH, a=i, b=1) for i in range(3)]
            ids = [task.id for task in tasks if task.id is not None]
            assert len(ids) == 3, "accepted all the same"
            dispatcher.wait_for_output("broker unavailable", timeout=10)

            server.start()
            done = stack.wait_finished(ids, timeout=40)
            assert all(t.status is TaskStatus.SUCCESS and t.attempts == 1 for t in done)

            assert dispatcher.running
            assert dispatcher.stop() == 0
            assert "dispatcher stopped" in dispatcher.output()
    finally:
        server.stop()


def test_the_dispatcher_carries_on_after_the_store_was_unreachable(tmp_path: Path) -> None:
    with celery_stack(tmp_path, DELAY_MEDIUM_SECONDS="2") as stack:
        dispatcher = stack.dispatcher()
        stack.worker("medium")
        tasks = [stack.create(Priority.MEDIUM, a=i, b=1) for i in range(3)]
        ids = [task.id for task in tasks if task.id is not None]

        database = make_url(stack.database_url).database
        admin = connect_admin()
        try:
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                    ),
                    {"d": database},
                )
            dispatcher.wait_for_output("dispatch round failed", timeout=10)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
            admin.dispose()

        done = stack.wait_finished(ids, timeout=30)
        assert all(t.status is TaskStatus.SUCCESS and t.attempts == 1 for t in done)
        assert dispatcher.running


def test_each_outage_of_its_postgresql_is_one_line_and_its_end_another(tmp_path: Path) -> None:
    with own_postgres() as server, redis_database() as broker_url:
        upgrade_to_head(server.url)
        stack = CeleryStack(server.url, broker_url, tmp_path)
        try:
            dispatcher = stack.dispatcher()
            for outage in (1, 2):
                server.stop_server()
                # Several rounds fail (they are retried every 0.5 s, then less often) ...
                dispatcher.wait_for_output(rf"(?s)(dispatch round failed.*){{{outage}}}", 10)
                time.sleep(1.5)
                server.start_server()
                # ... and the outage's end is one line too, counting them.
                dispatcher.wait_for_output(
                    rf"(?s)(dispatch rounds succeed again.*){{{outage}}}", 15
                )
            assert dispatcher.running

            log = dispatcher.output()
            assert len(re.findall("dispatch round failed", log)) == 2, log
            recoveries = re.findall(r"succeed again after (\d+) failed", log)
            assert len(recoveries) == 2 and all(int(n) >= 2 for n in recoveries), log
            assert "Traceback" not in log, log
            # Maintenance, on its own thread, logs its own outages the same way: a line each at
            # most (a pass a second may fall between two failed ones), never one per failure.
            assert len(re.findall("maintenance pass failed", log)) <= 2, log
        finally:
            stack.stop_all()
            stack.container.engine().dispose()

"""The dispatcher process rides out outages of the broker and of the store, then catches up;
SIGTERM stops it cleanly. Each scenario has a store and a broker of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from domain.priority import Priority
from domain.task import TaskStatus
from tests.integration.celery_stack import OwnRedisServer, celery_stack
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

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from adapters.sql import create_engine_for
from tests.processes import ManagedProcess, wait_until
from tests.system.generated_client import GeneratedClientScenarios, OfflineDocsScenarios
from tests.system.harness import RunningSystem, system_on_postgres_and_redis
from tests.system.idempotency_scenarios import RetrySafetyScenarios
from tests.system.scenarios import CoreScenarios, FaultScenarios

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningSystem, ManagedProcess]]:
    with system_on_postgres_and_redis(tmp_path_factory.mktemp("logs")) as running:
        yield running


@pytest.fixture
def system(running: tuple[RunningSystem, ManagedProcess]) -> RunningSystem:
    return running[0]


@pytest.fixture
def redis(running: tuple[RunningSystem, ManagedProcess]) -> ManagedProcess:
    return running[1]


class TestOnPostgresAndRedis(
    CoreScenarios,
    FaultScenarios,
    RetrySafetyScenarios,
    GeneratedClientScenarios,
    OfflineDocsScenarios,
):
    """Every process started on its own, as docker compose starts them."""


def test_expired_keys_are_pruned_by_the_dispatcher_and_the_key_is_then_free(
    system: RunningSystem,
) -> None:
    key = {"Idempotency-Key": f"prune-{uuid.uuid4()}"}
    first = system.http.post("/api/v1/tasks", json={"a": 1, "b": 2}, headers=key)
    assert first.status_code == 201, first.text
    engine = create_engine_for(system.processes["dispatcher"].env["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            lifetime = connection.execute(
                text("SELECT expires_at - created_at FROM idempotency_keys WHERE key = :k"),
                {"k": key["Idempotency-Key"]},
            ).scalar_one()
            assert lifetime == timedelta(hours=24)  # IDEMPOTENCY_KEY_TTL_SECONDS's default
            # Its day has passed (rather than waiting one out).
            connection.execute(
                text(
                    "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
                    "WHERE key = :k"
                ),
                {"k": key["Idempotency-Key"]},
            )

        def pruned() -> bool:
            with engine.connect() as connection:
                return (
                    connection.execute(
                        text("SELECT count(*) FROM idempotency_keys WHERE key = :k"),
                        {"k": key["Idempotency-Key"]},
                    ).scalar_one()
                    == 0
                )

        wait_until(pruned, 30, what="the dispatcher to prune the expired key")
    finally:
        engine.dispose()
    again = system.http.post("/api/v1/tasks", json={"a": 5, "b": 5}, headers=key)
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import ManagedProcess
from tests.system.generated_client import GeneratedClientScenarios, OfflineDocsScenarios
from tests.system.harness import RunningSystem, system_on_postgres_and_redis
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
    CoreScenarios, FaultScenarios, GeneratedClientScenarios, OfflineDocsScenarios
):
    """Every process started on its own, as docker compose starts them."""

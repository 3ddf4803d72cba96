from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.harness import Process, RunningSystem, system_on_postgres_and_redis
from tests.system.scenarios import CoreScenarios, FaultScenarios

pytestmark = pytest.mark.system


class TestOnPostgresAndRedis(CoreScenarios, FaultScenarios):
    @pytest.fixture(scope="class")
    def running(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[tuple[RunningSystem, Process]]:
        with system_on_postgres_and_redis(tmp_path_factory.mktemp("logs")) as running:
            yield running

    @pytest.fixture
    def system(self, running: tuple[RunningSystem, Process]) -> RunningSystem:
        return running[0]

    @pytest.fixture
    def redis(self, running: tuple[RunningSystem, Process]) -> Process:
        return running[1]

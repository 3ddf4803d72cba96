from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system.harness import RunningSystem, system_from_make_run
from tests.system.idempotency_scenarios import RetrySafetyScenarios
from tests.system.scenarios import CoreScenarios

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with system_from_make_run(
        tmp_path_factory.mktemp("logs"), tmp_path_factory.mktemp("var")
    ) as system:
        yield system


class TestEmbeddedMakeRun(CoreScenarios, RetrySafetyScenarios):
    """`make run` with nothing configured: SQLite and a broker that needs no server."""

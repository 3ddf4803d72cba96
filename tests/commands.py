"""The commands that start taskman's processes, read from the one place that defines them.

`make run` (honcho) starts the Procfile; the system tests start the same commands one by one;
docker-compose.yml must use the same commands (tests/deployment checks it)."""

from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATE = ["python", "-m", "entrypoints.migrate"]


def procfile() -> dict[str, list[str]]:
    """Process name -> argv, in the Procfile's order."""
    commands: dict[str, list[str]] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = shlex.split(command)
    return commands

"""What the phases share: running the Python client in its own process, and time conversions."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from tests.commands import ROOT


def client(*args: str, timeout: float = 600) -> dict[str, Any]:
    """`python -m bench.loadgen.client ...` in a process of its own; its JSON answer."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadgen.client", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench client failed:\n{completed.stderr}")
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def say(message: str) -> None:
    print(f"  · {message}", flush=True)

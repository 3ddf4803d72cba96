"""Processes for tests: start a command the way a user would, keep its output in a log file,
wait until it is ready, stop it (or kill it) together with its children."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout: float, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `condition` until it returns something truthy, which is returned; TimeoutError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not within {timeout} s: {what or condition}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_module(module: str, *args: str) -> list[str]:
    """`python -m module args`, run by the interpreter running the tests (the venv's)."""
    return [sys.executable, "-m", module, *args]


class ManagedProcess:
    """A child process in its own session, so that a signal reaches its whole process group
    (a Celery worker and its pool processes, honcho and its children)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> ManagedProcess:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A restarted process appends to the same log; readiness only looks at the new part.
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_for_output(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until the output of this run matches `pattern` (a regular expression). Raises
        with the log's tail if the process exits first."""
        compiled = re.compile(pattern)

        def matched() -> re.Match[str] | None:
            found = compiled.search(self.output())
            if found is None and not self.running:
                raise RuntimeError(f"{self.name} exited before {pattern!r}:\n{self.log_tail()}")
            return found

        try:
            return wait_until(matched, timeout, interval=0.05, what=f"{self.name}: {pattern!r}")
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.log_tail()}") from None

    def output(self) -> str:
        """What this run (since the last start) wrote."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def log_text(self) -> str:
        """The whole log, every run included."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def signal_group(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the whole group: no cleanup of any kind, as in a crash."""
        if self._popen is None:
            return
        self.signal_group(signal.SIGKILL)
        self._popen.wait(10)

    def stop(self, timeout: float = 10.0, signum: int = signal.SIGTERM) -> int | None:
        """Ask the group to stop; kill it if it has not after `timeout`. The exit code."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self.signal_group(signum)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self._popen.wait(10)
        # Pool processes left behind by a dead parent share its group: make sure none remain.
        self.signal_group(signal.SIGKILL)
        return self._popen.returncode


@contextmanager
def running(
    process: ManagedProcess, ready: str | None = None, timeout: float = 30.0
) -> Iterator[ManagedProcess]:
    """Start the process, wait for `ready` in its output, and stop it on the way out."""
    process.start()
    try:
        if ready is not None:
            process.wait_for_output(ready, timeout)
        yield process
    finally:
        process.stop()

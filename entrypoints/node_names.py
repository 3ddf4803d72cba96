"""Stable Celery node names for the worker pools: `high@host`, then `high-2@host`, ...

A node name is how Flower, `celery inspect` and the health checks tell workers apart. One that
carries the process id changes on every restart, and Flower keeps listing the dead name as an
offline worker forever. So a pool's first worker on a host is `<queue>@<host>`; a second worker
of the same queue on the same host (two honcho processes, a supervisor's numprocs) takes the
next free index, `<queue>-2@<host>`: two live workers must never share a name, or their replies
to a broadcast collide and one of them disappears from every count.

The index is claimed automatically, no setting to keep in step: each index is an exclusive
`flock` on a file of the host's temporary folder, named after the broker and the queue. The
kernel releases it when the worker process ends, however it ends, so a restarted worker gets
its index back. In containers each worker has a host name of its own and is always index 1."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any

from celery import signals

# More workers of one queue on one host than this is a configuration error, not a name.
MAX_INDEX = 64


def node_name(queue: str, index: int, host: str = "%h") -> str:
    """`high@<host>` for index 1, `high-<index>@<host>` beyond; `%h` lets Celery fill in the
    host name."""
    return f"{queue}@{host}" if index == 1 else f"{queue}-{index}@{host}"


def attempt_worker(node: str) -> str:
    """The worker an attempt records (at most 255 characters): the node name with `%h` filled
    in as Celery fills it (the host name), then `:` and the id of the process running the
    attempt (a pool process of that node), e.g. `high@box:4242`."""
    return f"{node.replace('%h', socket.gethostname())}:{os.getpid()}"[-255:]


def is_node_of(name: str, queue: str, host: str) -> bool:
    """Whether `name` is a node name `node_name` gives a worker of `queue` on `host`."""
    return re.fullmatch(rf"{re.escape(queue)}(-\d+)?@{re.escape(host)}", name) is not None


class NodeIndex:
    """The lowest index no other live worker of `queue` on this broker holds on this host, held
    until the process ends (or `release`). Raises RuntimeError if all MAX_INDEX are taken."""

    def __init__(self, queue: str, broker_url: str, folder: Path | None = None) -> None:
        folder = folder or Path(tempfile.gettempdir()) / "taskman-nodes"
        folder.mkdir(parents=True, exist_ok=True)
        # The broker, hashed: node names only need to be unique among workers of one broker,
        # and its URL may carry a password.
        broker = hashlib.sha256(broker_url.encode()).hexdigest()[:16]
        for index in range(1, MAX_INDEX + 1):
            fd = os.open(folder / f"{broker}-{queue}-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.index = index
            self._fd: int | None = fd
            return
        raise RuntimeError(f"{MAX_INDEX} workers of queue {queue!r} already run on this host")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def forget_in_pool_processes(self) -> None:
        """Pool processes forked by the worker inherit the lock's file; each closes its copy, so
        that only the worker holds the index and an orphaned pool process cannot keep it."""

        def close_inherited(**_: Any) -> None:
            # A lock is released only when every copy of its file is closed: closing the
            # child's copy leaves the worker's in force.
            self.release()

        signals.worker_process_init.connect(close_inherited, weak=False)

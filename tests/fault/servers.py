"""A PostgreSQL cluster of the fault matrix's own: initdb in a temporary folder, its own port.

Restarting it, or making it refuse connections, touches nothing else on the machine. PostgreSQL
refuses to run as root, so when the tests run as root its tools run as the `postgres` user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from tests.processes import free_port

DATABASE = "taskman"
SUPERUSER = "postgres"


def postgres_bin() -> Path:
    """The newest installed server's binaries (Debian layout: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1]


class OwnPostgres:
    """One cluster, one database (`taskman`), trust authentication on `host`:`port`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        prefix: Sequence[str] = (),
        trusted_network: str | None = None,
    ) -> None:
        """`host`: the address it listens on; `prefix`: a command its tools run under, e.g.
        `ip netns exec <namespace>` to start it inside a network namespace (tests/system);
        `trusted_network`: a CIDR whose clients it trusts too (initdb trusts only loopback)."""
        self.host = host
        self._trusted_network = trusted_network
        self.port = port or free_port()
        self._prefix = list(prefix)
        self._bin = postgres_bin()
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="taskman-fault-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.url = f"postgresql+psycopg://{SUPERUSER}@{host}:{self.port}/{DATABASE}"
        self._admin: Engine | None = None
        self._options = ""

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", SUPERUSER, "--", *argv]
        argv = [*self._prefix, *argv]
        # Output to a file, not a pipe: a server started by pg_ctl inherits it and keeps it open,
        # and reading a pipe to its end would wait for the server to exit.
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(argv, stdout=output, stderr=subprocess.STDOUT, timeout=120)
            output.seek(0)
            if done.returncode != 0:
                raise RuntimeError(f"{tool} failed: {output.read()}\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, SUPERUSER)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "--no-sync")
        if self._trusted_network:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self._trusted_network} trust\n")
        # fsync off: the cluster is thrown away, and the matrix restarts it, never crashes it.
        self._options = (
            f"-p {self.port} -c listen_addresses={self.host}"
            f" -c unix_socket_directories={self.folder} -c fsync=off -c max_connections=200"
        )
        self.start_server()
        with self.admin().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))

    def start_server(self) -> None:
        """Start the (initdb'ed) server and wait until it accepts connections."""
        data, log = str(self.data), str(self.log)
        self._run("pg_ctl", "-D", data, "-l", log, "-o", self._options, "-w", "start")

    def stop_server(self) -> None:
        """`pg_ctl stop -m fast`: the server is down (every session ended) until
        `start_server`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def admin(self) -> Engine:
        """Autocommit, on the `postgres` database (the one that is never refused)."""
        if self._admin is None:
            self._admin = create_engine(
                f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/postgres",
                isolation_level="AUTOCOMMIT",
                pool_pre_ping=True,
            )
        return self._admin

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, in-flight transactions roll back."""
        data, log = str(self.data), str(self.log)
        self._run("pg_ctl", "-D", data, "-l", log, "-m", "fast", "-w", "restart")

    @contextmanager
    def refusing_connections(self) -> Iterator[None]:
        """The taskman database refuses new connections and its sessions are ended; restored on
        the way out."""
        with self.admin().connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{DATABASE}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": DATABASE},
            )
        try:
            yield
        finally:
            with self.admin().connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{DATABASE}" ALLOW_CONNECTIONS true'))

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.dispose()
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()

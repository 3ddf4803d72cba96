"""Hosts on this one machine: network namespaces made by the test, each with its own `lo` and
one veth link to a bridge in the root namespace, on a private /24 that only these namespaces use
(nothing is routed anywhere else). The root namespace has an address on the bridge, so the test
itself reaches every host by its IP, as a client on another machine would.

Needs root (CAP_NET_ADMIN) and iproute2's `ip netns`. Every name starts with PREFIX; one run at
a time holds LOCK, and each run first deletes what a killed run may have left behind."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

PREFIX = "tmn-"
BRIDGE = f"{PREFIX}br"
SUBNET = "10.231.7"  # .1 is the root namespace's address on the bridge; hosts from .10
NETWORK = f"{SUBNET}.0/24"
ROOT_ADDRESS = f"{SUBNET}.1"
LOCK = Path("/tmp/taskman-netns-test.lock")
# Interface names are at most 15 characters; the host's end of its veth link is named after it.
MAX_NAME = 15


class NetnsUnavailable(RuntimeError):
    """The machine cannot make network namespaces (no iproute2, not root, or no CAP_NET_ADMIN)."""


def ip(*args: str) -> str:
    """Run `ip args`; its output. RuntimeError with ip's own message when it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


class Host:
    """One machine: a network namespace named PREFIX + `name`, with one address."""

    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.namespace = f"{PREFIX}{name}"
        if len(self.namespace) > MAX_NAME:
            raise ValueError(f"host name {name!r} too long for an interface name")
        self.address = address
        self.link = self.namespace  # the root namespace's end of its veth link

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run on this host (in its namespace)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def pids(self) -> list[int]:
        """Every process on this host."""
        return [int(pid) for pid in ip("netns", "pids", self.namespace).split()]

    def power_off(self) -> None:
        """Vanish as a machine whose power is cut: its link goes down first (so nothing it sends
        on the way out, not even a TCP reset, reaches anyone), then every process on it gets
        SIGKILL."""
        ip("link", "set", self.link, "down")
        _kill(self.pids())

    def power_on(self) -> None:
        """Its link is up again (its processes are the caller's to start)."""
        ip("link", "set", self.link, "up")


class Network:
    """The bridge and the hosts on it."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}

    def add(self, name: str) -> Host:
        host = Host(name, f"{SUBNET}.{10 + len(self.hosts)}")
        ip("netns", "add", host.namespace)
        self.hosts[name] = host
        ip(
            "link",
            "add",
            host.link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            host.namespace,
        )
        ip("link", "set", host.link, "master", BRIDGE)
        ip("link", "set", host.link, "up")
        inside = ["-n", host.namespace]
        ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip(*inside, "link", "set", "eth0", "up")
        ip(*inside, "link", "set", "lo", "up")
        return host


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_ours() -> None:
    """Delete every namespace and link named PREFIX..., killing the processes still in them."""
    for line in ip("netns", "list").splitlines():
        namespace = line.split()[0] if line.strip() else ""
        if namespace.startswith(PREFIX):
            with suppress(RuntimeError):
                _kill([int(pid) for pid in ip("netns", "pids", namespace).split()])
            ip("netns", "delete", namespace)
    for line in ip("-o", "link", "show").splitlines():
        # "7: tmn-api1@if6: <BROADCAST,...": the name, without the peer's index.
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            with suppress(RuntimeError):  # a veth end goes with its peer's namespace
                ip("link", "delete", name)


@contextmanager
def network() -> Iterator[Network]:
    """A bridge with the root namespace on it; every host added is deleted on the way out, with
    every process still on it, however the block ends."""
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a run on another checkout waits its turn
        try:
            remove_ours()
            ip("link", "add", BRIDGE, "type", "bridge")
        except (OSError, RuntimeError) as error:
            raise NetnsUnavailable(
                "the multi-host test makes network namespaces, veth links and a bridge with "
                f"iproute2 (`ip netns`), as root: {error}"
            ) from error
        try:
            ip("addr", "add", f"{ROOT_ADDRESS}/24", "dev", BRIDGE)
            ip("link", "set", BRIDGE, "up")
            yield Network()
        finally:
            remove_ours()

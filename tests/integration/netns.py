"""Several "hosts" on one machine: network namespaces joined by a bridge, each with its own address.

The root namespace holds the bridge and the first address of the subnet (``10.N.M.1``), so a
process there (the test, the runner) reaches every host, and the hosts reach it. Everything the
network made is removed on exit, processes first, even when the test failed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from chaos.lab.supervisor import die_with_parent


class NoNamespaces(Exception):
    """This machine cannot create network namespaces (no root, no ``ip``, a sandbox that forbids it)."""


def ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=10)


@dataclass
class Host:
    """One namespace: its name, its address on the bridge, and the processes the test ran in it."""

    ns: str
    address: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, cmd: list[str], log: Path) -> subprocess.Popen:
        """Run ``cmd`` inside this host, its output in ``log``; it dies with the test process."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        self.procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process running inside this namespace, whoever started it."""
        result = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True, timeout=10)
        return [int(p) for p in result.stdout.split()]


@dataclass
class Network:
    """``hosts`` namespaces on one bridge; use as a context manager."""

    count: int
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000}{random.randrange(100)}")
    subnet: str = field(default_factory=lambda: f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}")
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"fwbr{self.tag}"[:15]  # interface names are at most 15 characters

    @property
    def root_address(self) -> str:
        """The root namespace's address on the bridge (where the test and the runner are)."""
        return f"{self.subnet}.1"

    def __enter__(self) -> Network:
        try:
            ip("link", "add", self.bridge, "type", "bridge")
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", None) or str(e)
            raise NoNamespaces(f"cannot create a bridge: {detail.strip()}") from e
        try:
            ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for i in range(self.count):
                self.hosts.append(self._add_host(i))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _add_host(self, i: int) -> Host:
        host = Host(f"fw{self.tag}-{chr(ord('a') + i)}", f"{self.subnet}.{11 + i}")
        outside, inside = f"fwv{self.tag}{i}"[:15], f"fwp{self.tag}{i}"[:15]
        ip("netns", "add", host.ns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", host.ns)
        ip("link", "set", outside, "master", self.bridge, "up")
        ip("addr", "add", f"{host.address}/24", "dev", inside, ns=host.ns)
        ip("link", "set", inside, "up", ns=host.ns)
        ip("link", "set", "lo", "up", ns=host.ns)
        return host

    def __exit__(self, *_exc) -> None:
        for host in self.hosts:
            for proc in host.procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in host.procs:
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pid in host.pids():  # anything a process left behind in the namespace
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # Deleting the namespace deletes its end of the veth pair, and so the other end.
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network that still exist (none, after exit)."""
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        left = [h.ns for h in self.hosts if h.ns in namespaces]
        return left + ([self.bridge] if f" {self.bridge}:" in links else [])

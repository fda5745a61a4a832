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
    links: list[str] = field(default_factory=list)  # the root namespace's ends of the veth pairs
    made_bridge: bool = False

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
            self.made_bridge = True
            ip("netns", "add", self._ns(0))  # the first namespace: where a sandbox would refuse
        except (OSError, subprocess.CalledProcessError) as e:
            self.__exit__(None, None, None)
            detail = getattr(e, "stderr", None) or str(e)
            raise NoNamespaces(detail.strip()) from e
        try:
            ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for i in range(self.count):
                self._add_host(i)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _ns(self, i: int) -> str:
        return f"fw{self.tag}-{chr(ord('a') + i)}"

    def _add_host(self, i: int) -> None:
        host = Host(self._ns(i), f"{self.subnet}.{11 + i}")
        if i > 0:
            ip("netns", "add", host.ns)
        # Known from here on, so that a failure below still removes it.
        self.hosts.append(host)
        outside, inside = f"fwv{self.tag}{i}"[:15], f"fwp{self.tag}{i}"[:15]
        self.links.append(outside)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", host.ns)
        ip("link", "set", outside, "master", self.bridge, "up")
        ip("addr", "add", f"{host.address}/24", "dev", inside, ns=host.ns)
        ip("link", "set", inside, "up", ns=host.ns)
        ip("link", "set", "lo", "up", ns=host.ns)

    def __exit__(self, *_exc) -> None:
        # Every step on its own: one that fails (or hangs past its timeout) must not keep the
        # others from running.
        for host in self.hosts:
            for proc in host.procs:
                _quietly(proc.terminate)
            for proc in host.procs:
                _quietly(lambda proc=proc: _stop(proc))
            _quietly(lambda host=host: _kill_all(host.pids()))  # what a process left behind in it
        for host in self.hosts:
            # Deleting a namespace deletes its end of a veth pair, and so the other end.
            _quietly(lambda host=host: subprocess.run(["ip", "netns", "del", host.ns], capture_output=True, timeout=10))
        if not self.hosts:  # a first namespace made before anything else failed
            _quietly(lambda: subprocess.run(["ip", "netns", "del", self._ns(0)], capture_output=True, timeout=10))
        for link in self.links:  # an outer end whose namespace was never reached
            _quietly(lambda link=link: subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=10))
        if self.made_bridge:
            _quietly(lambda: subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10))

    def leftovers(self) -> list[str]:
        """Namespaces and links of this network that still exist (none, after exit)."""
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        left = [self._ns(i) for i in range(self.count) if self._ns(i) in namespaces.split()]
        return left + [name for name in (self.bridge, *self.links) if f" {name}:" in links or f" {name}@" in links]


def _quietly(step) -> None:
    try:
        step()
    except Exception:  # noqa: BLE001 - cleanup goes on whatever one step did
        pass


def _stop(proc: subprocess.Popen) -> None:
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

"""The test network itself: hosts that reach each other and the root namespace, and nothing left
behind, also when building it fails halfway."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from chaos.lab.ports import free_ports
from tests.integration import netns
from tests.integration.netns import Network, NoNamespaces

pytestmark = pytest.mark.integration


def made(count: int) -> Network:
    try:
        return Network(count).__enter__()
    except NoNamespaces as e:
        pytest.skip(f"network namespaces cannot be created here: {e}")


CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()"
LISTEN = "import socket, sys; s = socket.create_server((sys.argv[1], int(sys.argv[2]))); s.accept()"


def connects(ns: str, host: str, port: int) -> bool:
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, host, str(port)]
    return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0


def test_hosts_reach_each_other_and_the_root_namespace_and_go_away(tmp_path):
    net = made(2)
    try:
        a, b = net.hosts
        with socket.create_server((net.root_address, 0)) as root:
            assert connects(a.ns, net.root_address, root.getsockname()[1])
        port = free_ports(1)[0]
        b.run([sys.executable, "-c", LISTEN, b.address, str(port)], tmp_path / "listen.log")
        deadline = time.monotonic() + 10
        while not connects(a.ns, b.address, port):
            assert time.monotonic() < deadline, (tmp_path / "listen.log").read_text()
            time.sleep(0.2)
        assert not connects(a.ns, "127.0.0.1", port)  # b's port is b's alone
    finally:
        net.__exit__(None, None, None)
    assert net.leftovers() == []


def test_a_network_that_fails_halfway_leaves_nothing(monkeypatch):
    real_ip = netns.ip

    def failing(*args: str, ns: str | None = None) -> None:
        if args[:2] == ("addr", "add") and args[2].endswith(".12/24"):  # the second host's address
            raise subprocess.CalledProcessError(2, "ip", stderr="simulated")
        real_ip(*args, ns=ns)

    monkeypatch.setattr(netns, "ip", failing)
    net = Network(3)
    try:
        with pytest.raises(subprocess.CalledProcessError):
            net.__enter__()
    except NoNamespaces as e:
        pytest.skip(f"network namespaces cannot be created here: {e}")
    assert len(net.hosts) == 2 and net.leftovers() == []

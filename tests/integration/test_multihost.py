"""A lab over three hosts: every process started by ``failwhale serve`` in its own network
namespace at its own address, Locust's master and two workers on three different hosts, and
the runner attached from the root namespace. The scenario holds, Prometheus scraped every
process through its own address, the journey totals are exact, and nothing is left behind."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from chaos.lab.ports import AUX_PORTS, free_ports
from chaos.promql import query
from services.architecture import load_architecture
from services.config import LabConfig, load_lab_config
from tests.conftest import V1
from tests.integration.netns import Network, NoNamespaces
from tests.integration.test_failwhale_up import lab_pids

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).parents[1] / "chaos" / "data" / "multihost.yaml"
FAILWHALE = [sys.executable, "-m", "chaos.cli"]
# Which host runs what. The runner (chaos-metrics) is in the root namespace.
PLACES = {
    0: ["web", "edge", "api-1", "api-2", "prometheus", "workshop", "locust"],
    1: ["api-3", "api-4", "auth", "timeline", "locust-master", "loadgen-metrics"],
    2: ["tweets", "notifications", "dashboard"],
}
WORKER_HOSTS = (0, 2)  # the master is on host 1
LOAD_S = 54  # warm-up, the timeline (20 s at speed 2), rollbacks and the steady-state check after them (~42 s)


def spread_lab(folder: Path, net: Network) -> Path:
    names = [*load_architecture(V1).instance_kinds(), *AUX_PORTS]
    hosts = {name: net.hosts[i].address for i, placed in PLACES.items() for name in placed}
    hosts["chaos-metrics"] = net.root_address
    config = {
        "network": True,  # the explicit opt-in: these addresses are on the bridge, not loopback
        "host": net.hosts[0].address,
        "hosts": hosts,
        "data_dir": str(folder / "data"),
        "architecture": str(V1),
        "ports": dict(zip(names, free_ports(len(names)), strict=True)),
    }
    path = folder / "spread.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def ready_url(lab: LabConfig, name: str) -> str:
    if name == "prometheus":
        return lab.url(name) + "/-/ready"
    if name == "loadgen":
        return lab.url("loadgen-metrics") + "/metrics"
    return lab.url(name) + "/readyz"


def wait_ready(lab: LabConfig, names: list[str], procs: dict[str, subprocess.Popen], logs: Path) -> None:
    pending, deadline = list(names), time.monotonic() + 30
    while pending:
        for name in list(pending):
            assert procs[name].poll() is None, f"{name} exited: {(logs / f'{name}.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(ready_url(lab, name), timeout=1) as resp:
                    if resp.status == 200:
                        pending.remove(name)
            except (urllib.error.URLError, OSError):
                pass
        assert time.monotonic() < deadline, f"not ready: {pending}"
        time.sleep(0.2)


def serve(net: Network, where: int, name: str, config: Path, logs: Path, *extra: str) -> subprocess.Popen:
    cmd = [*FAILWHALE, "serve", name.split("#")[0], "--lab", str(config), *extra]
    return net.hosts[where].run(cmd, logs / f"{name}.log")


def journeys_in_csv(load_dir: Path) -> int:
    with (load_dir / "locust_stats.csv").open() as f:
        return sum(int(row["Request Count"]) for row in csv.DictReader(f) if row["Type"] == "JOURNEY")


def test_a_lab_over_three_hosts_plays_a_scenario_attached_and_leaves_nothing(tmp_path):
    try:
        net = Network(3).__enter__()
    except NoNamespaces as e:
        pytest.skip(f"network namespaces cannot be created here: {e}")
    logs = tmp_path / "logs"
    try:
        config = spread_lab(tmp_path, net)
        lab = load_lab_config(config)
        procs: dict[str, subprocess.Popen] = {}
        services = [*load_architecture(V1).instance_kinds(), "prometheus", "dashboard"]
        for name in services:
            where = next(i for i, placed in PLACES.items() if name in placed)
            procs[name] = serve(net, where, name, config, logs)
        wait_ready(lab, services, procs, logs)
        # The control planes answer at every host's address.
        status = subprocess.run(
            [*FAILWHALE, "status", "--lab", str(config)], capture_output=True, text=True, timeout=30
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert all(f"{n} " in status.stdout for n in load_architecture(V1).instance_kinds())
        for i, where in enumerate(WORKER_HOSTS):
            procs[f"loadgen-worker#{i}"] = serve(net, where, f"loadgen-worker#{i}", config, logs)
        load = ["--headless", "--expect-workers", "2", "--users", "16", "--web-share", "0.5"]
        load += ["--shape", "constant", "--load-duration", str(LOAD_S)]
        procs["loadgen"] = serve(net, 1, "loadgen", config, logs, *load)
        wait_ready(lab, ["loadgen"], procs, logs)

        run = subprocess.run(
            [*FAILWHALE, "run", str(SCENARIO), "--attach", "--lab", str(config), "--out", str(tmp_path / "reports")],
            capture_output=True,
            text=True,
            timeout=200,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr
        assert "verdict: HELD" in run.stdout
        halt = subprocess.run([*FAILWHALE, "halt", "--lab", str(config)], capture_output=True, text=True, timeout=30)
        assert halt.returncode == 0 and "halted 10 of 10 processes" in halt.stdout, halt.stdout + halt.stderr

        # Prometheus (on host 0) scraped every process through the address the config gives it.
        up = query(lab.url("prometheus"), "max_over_time(up[10m])", timeout_s=5)
        scraped = {s["metric"]["instance"] for s in up if s["value"][1] == "1"}
        expected = {lab.address(n) for n in load_architecture(V1).instance_kinds()}
        expected |= {lab.address("loadgen-metrics"), lab.address("chaos-metrics")}
        assert expected <= scraped, f"never scraped: {sorted(expected - scraped)}"
        assert len({lab.host_of(n) for n in (*load_architecture(V1).instance_kinds(), "chaos-metrics")}) == 4

        # Both workers joined the master from their own hosts, and Prometheus holds exactly
        # what Locust counted over all of them.
        procs["loadgen"].wait(LOAD_S)
        master_log = (logs / "loadgen.log").read_text()
        assert "2 workers connected" in master_log, master_log[-2000:]
        total = query(lab.url("prometheus"), "sum(last_over_time(failwhale_journeys_total[10m]))", timeout_s=5)
        assert float(total[0]["value"][1]) == journeys_in_csv(lab.data_path / "load")
        users = query(lab.url("prometheus"), "max_over_time(sum(failwhale_loadgen_users)[10m:1s])", timeout_s=5)
        assert float(users[0]["value"][1]) == 16
    finally:
        net.__exit__(None, None, None)
    assert net.leftovers() == [], "namespaces or links left behind"
    assert lab_pids(str(tmp_path)) == [], "processes left behind"

"""Rollouts against a real lab: a guard rolls a breaking change back before it reaches every
replica, and a change outlives its owner by one lease at most."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from bench.lab_throughput import machine_busy_seconds
from chaos.lab.supervisor import Lab, LoadOptions
from services.architecture import load_architecture
from services.common.app import read_token
from services.config import load_lab_config
from tests.integration.conftest import prom_query, wait_for_query, write_lab_config

pytestmark = pytest.mark.integration

# Web users' journeys that were not ok, over the last 10 s: what the guard watches.
GUARD = (
    'sum(rate(failwhale_journeys_total{client="web",outcome!="ok"}[10s]))'
    ' / sum(rate(failwhale_journeys_total{client="web"}[10s])) > 0.1'
)


def breaking_change(folder: Path, base: Path) -> Path:
    """v1 with a timeline timeout no call can meet: every timeline call from a moved replica fails."""
    arch = yaml.safe_load(base.read_text())
    arch["version"] = "v2-broken"
    arch["api"]["upstreams"]["timeline"]["timeout_s"] = 0.001
    path = folder / "v2-broken.yaml"
    path.write_text(yaml.safe_dump(arch))
    return path


def test_guard_rolls_a_breaking_change_back_before_it_reaches_all_replicas(tmp_path):
    cfg = load_lab_config(write_lab_config(tmp_path))
    with Lab(cfg, load_architecture(cfg.architecture_path)) as lab:
        # 20 web users: the guard's 10 s window must hold enough web journeys to tell one broken
        # replica in four from noise (with 8 users it once stayed under 0.1 through wave 1's bake).
        lab.start_load(LoadOptions(peak_users=40, web_share=0.5, shape="constant", duration_s=60), tmp_path / "run")
        time.sleep(8)  # a healthy baseline first: the guard must not fire on it
        assert prom_query(lab, GUARD) == []
        change = breaking_change(tmp_path, cfg.architecture_path)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaos.cli",
                "rollout",
                str(change),
                "--config",
                str(cfg.source),
                "--waves",
                "0.25,0.5,1",
                "--bake",
                "15",
                "--guard",
                GUARD,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        wave1 = next(line for line in result.stdout.splitlines() if line.startswith("wave 1/3: "))
        assert wave1.endswith(", api-1 now run v2-broken") and "api-2" not in wave1, wave1
        assert "wave 3/3" not in result.stdout  # stopped before the last replicas
        assert "rolled back after 1 of 3 wave(s): guard breached after wave 1" in result.stdout, result.stdout
        # Every process is back on v1, as Prometheus sees it.
        versions = wait_for_query(
            lab, "count by (version) (failwhale_deploy_info)", lambda r: {s["metric"]["version"] for s in r} == {"v1"}
        )
        assert {s["metric"]["version"]: s["value"][1] for s in versions} == {"v1": "10"}
        lab.stop_instance("loadgen")


def test_a_rollout_file_that_does_not_fit_the_lab_is_refused_in_one_line(lab, tmp_path):
    arch = yaml.safe_load(lab.lab.architecture_path.read_text())
    arch["api"]["instances"].append("api-9")
    bad = tmp_path / "v3.yaml"
    bad.write_text(yaml.safe_dump(arch))
    result = subprocess.run(
        [sys.executable, "-m", "chaos.cli", "rollout", str(bad), "--config", str(lab.lab.source)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "its processes differ from the running lab's" in result.stderr


V2 = Path(__file__).parents[2] / "services" / "architecture" / "v2.yaml"
LEASE_S = 3  # shorter than the default 15 s, so the test waits less


def control_send(lab: Lab, name: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        lab.url(name) + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {read_token(lab.lab.token_path)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def control_get(lab: Lab, name: str) -> dict:
    return control_send(lab, name, "GET", "/control/architecture")


def versions(lab: Lab) -> dict[str, str]:
    """What every service process says it runs, asked on its control plane."""
    return {name: control_get(lab, name)["version"] for name in lab.arch.instance_kinds()}


def ctrl_c_reaches_it() -> None:
    """preexec_fn: a shell runs background jobs with SIGINT ignored, and a child inherits that
    (so does Python's KeyboardInterrupt, then); the Ctrl-C tests must not depend on how CI is started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_rollout(lab: Lab, *extra: str) -> subprocess.Popen:
    """``failwhale rollout v2`` in one wave; returns once every process has moved."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "rollout",
            str(V2),
            "--config",
            str(lab.lab.source),
            "--waves",
            "1",
            "--bake",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    lines = []
    while (line := proc.stdout.readline()) and "is on every process" not in line:
        lines.append(line)
    assert line, "".join(lines)
    return proc


def test_a_killed_rollout_lapses_back_to_the_baseline_within_its_lease(lab):
    proc = start_rollout(lab, "--lease", str(LEASE_S))
    assert set(versions(lab).values()) == {"v2"}
    time.sleep(2 * LEASE_S)
    assert set(versions(lab).values()) == {"v2"}, "the command renews its lease while it runs"
    proc.send_signal(signal.SIGKILL)  # no rollback can run
    proc.communicate()
    killed = time.monotonic()
    while set(versions(lab).values()) != {"v1"}:
        assert time.monotonic() - killed < LEASE_S + 5, versions(lab)
        time.sleep(0.5)


def test_ctrl_c_rolls_a_held_rollout_back_and_keep_makes_it_permanent(lab):
    proc = start_rollout(lab)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "rolled back v2 (interrupted)" in out, out
    assert set(versions(lab).values()) == {"v1"}

    kept = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "rollout",
            str(V2),
            "--config",
            str(lab.lab.source),
            "--waves",
            "1",
            "--bake",
            "0",
            "--keep",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert kept.returncode == 0 and "for good" in kept.stdout, kept.stdout + kept.stderr
    answers = [control_get(lab, name) for name in lab.arch.instance_kinds()]
    assert {(a["version"], a["lease_expires_in_s"]) for a in answers} == {("v2", None)}  # no lease to lapse
    back = subprocess.run(
        [sys.executable, "-m", "chaos.cli", "rollback", "--config", str(lab.lab.source)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert back.returncode == 0, back.stdout + back.stderr
    assert set(versions(lab).values()) == {"v1"}


@pytest.mark.parametrize("delay_s", [0.0, 0.2, 0.5, 0.8, 1.2])
def test_ctrl_c_wherever_it_lands_ends_on_the_baseline(lab, delay_s):
    # From the command's first line through the rollout, the announcement and the hold. A Ctrl-C
    # inside the announcement's print once left v2 running without its rollback.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "rollout",
            str(V2),
            "--config",
            str(lab.lab.source),
            "--waves",
            "0.5,1",
            "--bake",
            "0.3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    first = proc.stdout.readline()
    assert first.startswith("rolling out"), first
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in out, out
    assert set(versions(lab).values()) == {"v1"}, out


def test_halt_on_a_saturated_lab_stops_a_rollout_and_undoes_everything_within_2_s(tmp_path):
    wrk = shutil.which("wrk")
    assert wrk, "wrk is missing: `make test` installs it (failwhale setup --wrk)"
    cfg = load_lab_config(write_lab_config(tmp_path))
    with Lab(cfg, load_architecture(cfg.architecture_path)) as lab:
        lab.start_load(LoadOptions(peak_users=300, shape="constant", duration_s=90, spawn_per_s=100), tmp_path / "run")
        # The users, plus wrk's 256 connections that never wait: both cores stay busy.
        hammers = [
            subprocess.Popen(
                [wrk, "-t1", "-c128", "-d60s", lab.url(name) + "/readyz"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in ("web", "edge")
        ]
        rollout = None
        try:
            for name in ("edge", "auth", "timeline"):
                control_send(
                    lab,
                    name,
                    "POST",
                    "/control/faults",
                    {"faults": [{"kind": "latency", "ttl_s": 600, "latency_ms": 200, "probability": 0.2}]},
                )
            rollout = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chaos.cli",
                    "rollout",
                    str(V2),
                    "--config",
                    str(cfg.source),
                    "--waves",
                    "0.25,0.5,1",
                    "--bake",
                    "30",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            lines = []
            while (line := rollout.stdout.readline()) and not line.startswith("wave 1/3"):
                lines.append(line)
            assert line, "".join(lines)
            busy_before, t_before = machine_busy_seconds(), time.monotonic()
            time.sleep(2)
            busy = (machine_busy_seconds() - busy_before) / (time.monotonic() - t_before)
            assert busy >= 0.9 * len(os.sched_getaffinity(0)), f"the lab was not saturated: {busy:.2f} cores busy"

            halted = subprocess.run(
                [sys.executable, "-m", "chaos.cli", "halt", "--config", str(cfg.source)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            print(halted.stdout)  # its time, in the log of a run that passes too
            assert halted.returncode == 0, halted.stdout + halted.stderr
            took = float(halted.stdout.split(" in ")[1].split("s:")[0])
            assert took <= 2.0, halted.stdout
            assert "3 fault(s) removed" in halted.stdout, halted.stdout
            # What halt confirmed holds: every process on v1 with no fault, and the rollout gone
            # without another wave.
            assert set(versions(lab).values()) == {"v1"}
            for name in lab.arch.instance_kinds():
                assert control_send(lab, name, "GET", "/control/faults")["faults"] == [], name
            out, _ = rollout.communicate(timeout=20)
            assert "halted after wave 1/3" in out and "wave 2/3" not in out, out
            assert set(versions(lab).values()) == {"v1"}
        finally:
            for p in hammers + ([rollout] if rollout else []):
                if p.poll() is None:
                    p.kill()
                    p.wait()

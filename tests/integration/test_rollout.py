"""A guarded rollout of a breaking change is rolled back before it reaches every replica."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chaos.lab.supervisor import Lab, LoadOptions
from services.architecture import load_architecture
from services.config import load_lab_config
from tests.integration.conftest import prom_query, wait_for_query, write_lab_config

pytestmark = pytest.mark.integration

# Web users' journeys that were not ok, over the last 10 s: what the guard watches.
GUARD = ('sum(rate(failwhale_journeys_total{client="web",outcome!="ok"}[10s]))'
         ' / sum(rate(failwhale_journeys_total{client="web"}[10s])) > 0.1')


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
        lab.start_load(LoadOptions(peak_users=16, web_share=0.5, shape="constant", duration_s=60), tmp_path / "run")
        time.sleep(8)  # a healthy baseline first: the guard must not fire on it
        assert prom_query(lab, GUARD) == []
        change = breaking_change(tmp_path, cfg.architecture_path)
        result = subprocess.run(
            [sys.executable, "-m", "chaos.cli", "rollout", str(change), "--config", str(cfg.source),
             "--waves", "0.25,0.5,1", "--bake", "15", "--guard", GUARD],
            capture_output=True, text=True, timeout=90,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        wave1 = next(line for line in result.stdout.splitlines() if line.startswith("wave 1/3: "))
        assert wave1.endswith(", api-1 now run v2-broken") and "api-2" not in wave1, wave1
        assert "wave 3/3" not in result.stdout  # stopped before the last replicas
        assert "rolled back after 1 of 3 wave(s): guard breached after wave 1" in result.stdout, result.stdout
        # Every process is back on v1, as Prometheus sees it.
        versions = wait_for_query(lab, "count by (version) (failwhale_deploy_info)",
                                  lambda r: {s["metric"]["version"] for s in r} == {"v1"})
        assert {s["metric"]["version"]: s["value"][1] for s in versions} == {"v1": "10"}
        lab.stop_instance("loadgen")


def test_a_rollout_file_that_does_not_fit_the_lab_is_refused_in_one_line(lab, tmp_path):
    arch = yaml.safe_load(lab.lab.architecture_path.read_text())
    arch["api"]["instances"].append("api-9")
    bad = tmp_path / "v3.yaml"
    bad.write_text(yaml.safe_dump(arch))
    result = subprocess.run([sys.executable, "-m", "chaos.cli", "rollout", str(bad), "--config", str(lab.lab.source)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "its processes differ from the running lab's" in result.stderr

"""The Prometheus config the lab writes: valid for Prometheus itself, with the SLO rules loaded."""

from __future__ import annotations

import subprocess

import yaml

from chaos.lab.prometheus import write_config
from chaos.lab.provision import find_promtool
from dashboards.spec import RULES_FILE
from services.architecture import load_architecture
from services.config import DEFAULT_LAB_CONFIG, load_lab_config


def test_the_generated_config_passes_promtool_and_loads_the_rules(tmp_path):
    promtool = find_promtool()
    assert promtool is not None, "promtool not found: `make test` installs Prometheus with it"
    lab = load_lab_config(DEFAULT_LAB_CONFIG)
    path = write_config(tmp_path / "prometheus.yml", lab, load_architecture(lab.architecture_path))
    result = subprocess.run([str(promtool), "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    assert config["rule_files"] == [str(RULES_FILE)]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    # The jobs the rules and panels name (the status tile leaves out loadgen and chaos).
    assert {"api", "web", "edge", "auth", "timeline", "tweets", "notifications", "loadgen", "chaos"} <= jobs

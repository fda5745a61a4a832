"""chaosfailwhale as Chaos Toolkit sees it: what `chaos discover` lists, shipped experiments that
validate, and every mistake a user can make as Chaos Toolkit's own ActivityFailed, in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

import chaosfailwhale
from chaosfailwhale import actions, probes
from chaosfailwhale.lab import architecture_file, target
from services.config import DEFAULT_LAB_CONFIG, load_lab_config

EXPERIMENTS = Path(__file__).parents[2] / "extensions" / "chaosfailwhale" / "experiments"
CHAOS = Path(sys.executable).with_name("chaos")
ACTIONS = {"inject_fault", "clear_faults", "rollout", "rollback", "halt", "start_load", "stop_load"}
PROBES = {"journeys_served", "user_reports", "status_page", "architecture_versions", "alerts_firing"}


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_discover_lists_every_action_and_probe_with_its_arguments():
    found = chaosfailwhale.discover(discover_system=False)
    kinds = {a["name"]: a["type"] for a in found["activities"]}
    assert {n for n, t in kinds.items() if t == "action"} == ACTIONS
    assert {n for n, t in kinds.items() if t == "probe"} == PROBES
    rollout = next(a for a in found["activities"] if a["name"] == "rollout")
    args = {a["name"]: a for a in rollout["arguments"]}
    assert args["architecture"]["type"] == "string" and args["bake_s"] == {
        "name": "bake_s",
        "default": 4.0,
        "type": "number",
    }
    assert all(a["doc"] for a in found["activities"])


def test_the_chaos_command_discovers_the_installed_extension(tmp_path):
    out = tmp_path / "discovery.json"
    done = subprocess.run(
        [
            str(CHAOS),
            "--no-version-check",
            "--log-file",
            str(tmp_path / "chaos.log"),
            "discover",
            "--no-system-info",
            "--no-install",
            "--discovery-path",
            str(out),
            "chaosfailwhale",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {a["name"] for a in json.loads(out.read_text())["activities"]} == ACTIONS | PROBES


@pytest.mark.parametrize("name", ["headline.json", "canary.json"])
def test_the_shipped_experiments_are_valid_chaos_toolkit_experiments(name):
    experiment = load_experiment(str(EXPERIMENTS / name))
    ensure_experiment_is_valid(experiment)  # raises on a missing function or a wrong argument
    rollouts = [a for a in experiment["method"] if a["provider"]["func"] == "rollout"]
    assert rollouts and all(a["provider"]["arguments"]["architecture"] == "v2" for a in rollouts)
    assert {r["provider"]["func"] for r in experiment["rollbacks"]} >= {"rollback"}


def test_a_lab_config_that_is_not_there_is_one_line(tmp_path):
    with pytest.raises(ActivityFailed) as info:
        target({"failwhale_lab": str(tmp_path / "nope.yaml")}, None)
    assert one_line(info).startswith("configuration.failwhale_lab: ") and "nope.yaml" in str(info.value)


def test_a_lab_without_a_token_says_how_to_give_one(tmp_path):
    config = tmp_path / "lab.yaml"
    lab = yaml.safe_load(DEFAULT_LAB_CONFIG.read_text())
    config.write_text(
        yaml.safe_dump(
            lab | {"data_dir": str(tmp_path / "data"), "architecture": str(load_lab_config().architecture_path)}
        )
    )
    with pytest.raises(ActivityFailed) as info:
        target({"failwhale_lab": str(config)}, None)
    assert "secrets.failwhale.token" in one_line(info)
    # Chaos Toolkit hands an activity its provider's secrets flattened: the token is enough.
    assert target({"failwhale_lab": str(config)}, {"token": "t0k3n"}).control.token == "t0k3n"


def test_a_token_in_the_experiments_secrets_reaches_the_activity_through_chaos_toolkit(tmp_path):
    from chaoslib.activity import run_activity

    config = tmp_path / "lab.yaml"
    lab = yaml.safe_load(DEFAULT_LAB_CONFIG.read_text())
    lab["ports"] = {name: port + 20000 if port < 40000 else port for name, port in lab["ports"].items()}
    config.write_text(
        yaml.safe_dump(
            lab | {"data_dir": str(tmp_path / "data"), "architecture": str(load_lab_config().architecture_path)}
        )
    )
    probe = {
        "type": "probe",
        "name": "versions",
        "provider": {
            "type": "python",
            "module": "chaosfailwhale.probes",
            "func": "architecture_versions",
            "secrets": ["failwhale"],
        },
    }
    # No lab runs there: with the token, the probe gets as far as asking the processes.
    versions = run_activity(probe, {"failwhale_lab": str(config)}, {"failwhale": {"token": "t0k3n"}})
    assert set(versions.values()) == {"?"}
    with pytest.raises(ActivityFailed, match="no control token"):
        run_activity({**probe, "provider": {**probe["provider"], "secrets": []}}, {"failwhale_lab": str(config)}, {})


def test_a_bad_fault_and_a_bad_client_name_what_is_wrong(tmp_path):
    secrets = {"token": "t"}
    with pytest.raises(ActivityFailed) as info:
        actions.inject_fault(["timeline"], {"kind": "error", "status": 200}, secrets=secrets)
    assert one_line(info).startswith("fault.status: ")
    with pytest.raises(ActivityFailed) as info:
        probes.journeys_served("desktop", secrets=secrets)
    assert one_line(info) == "client must be one of web, app, not 'desktop'"
    with pytest.raises(ActivityFailed) as info:
        actions.rollout("v9", secrets=secrets)
    assert one_line(info).startswith("architecture v9: ")
    for lease in (0, None, 10_000):  # a change without a lease would outlive the run
        with pytest.raises(ActivityFailed, match="lease_s must be between"):
            actions.rollout("v2", lease_s=lease, secrets=secrets)
    with pytest.raises(ActivityFailed, match="shape must be constant or evening"):
        actions.start_load(shape="morning", secrets=secrets)
    for users in (0, 10_001, True):
        with pytest.raises(ActivityFailed, match="users must be a whole number from 1 to 10,000"):
            actions.start_load(users=users, secrets=secrets)
    with pytest.raises(ActivityFailed, match="duration_s must be between 1 and 86400 seconds"):
        actions.start_load(duration_s=86_401, secrets=secrets)


def test_an_architecture_is_a_file_or_a_version_beside_the_labs():
    lab = load_lab_config()
    assert architecture_file("v2", lab) == lab.architecture_path.with_name("v2.yaml")
    assert architecture_file("services/architecture/v2.yaml", lab) == Path("services/architecture/v2.yaml")

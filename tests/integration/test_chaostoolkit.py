"""``chaos run`` on the shipped headline experiment against a live lab: the hypothesis holds
before the change and deviates after it, the rollbacks run, and the lab ends on v1 with no
fault. Interrupted mid-method (Chaos Toolkit then skips its rollbacks), the lab still comes back
by itself: the change's leases lapse once nothing renews them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosfailwhale.probes import journeys_served
from services.architecture import load_architecture
from services.config import LabConfig, load_lab_config
from tests.conftest import V1
from tests.integration.conftest import write_lab_config
from tests.integration.test_failwhale_up import start_up
from tests.integration.test_runner_killed import LEASE_S, faults_on, version_on

pytestmark = pytest.mark.integration

HEADLINE = Path(__file__).parents[2] / "extensions" / "chaosfailwhale" / "experiments" / "headline.json"
CHAOS = Path(sys.executable).with_name("chaos")
NAMES = list(load_architecture(V1).instance_kinds())


@pytest.fixture(scope="module")
def live_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LabConfig]]:
    """A lab with the headline's users at its peak (scale 1), constant, for both tests."""
    folder = tmp_path_factory.mktemp("ctk")
    config = write_lab_config(folder)
    up, _ = start_up(config, "--users", "90", "--web-share", "0.5", "--shape", "constant", "--load-duration", "240")
    try:
        yield config, load_lab_config(config)
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=30)


def chaos_run(config: Path, folder: Path, *options: str) -> list[str]:
    return [
        str(CHAOS),
        "--no-version-check",
        "--log-file",
        str(folder / "chaostoolkit.log"),
        "run",
        "--journal-path",
        str(folder / "journal.json"),
        *options,
        str(HEADLINE),
    ]


def wait_served(config: Path, within_s: float = 60) -> None:
    """Until the experiment's own hypothesis would hold (both clients, its 15 s window)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            served = [journeys_served(c, 15, {"failwhale_lab": str(config)}) for c in ("web", "app")]
        except ActivityFailed:
            served = []
        if served and min(served) >= 0.95:
            return
        assert time.monotonic() < deadline, f"users not served before the experiment: {served}"
        time.sleep(1)


def test_the_headline_experiment_deviates_during_the_change_and_its_rollbacks_restore_v1(live_lab, tmp_path):
    config, lab = live_lab
    wait_served(config)
    done = subprocess.run(
        chaos_run(config, tmp_path),
        capture_output=True,
        text=True,
        timeout=150,
        env=os.environ | {"FAILWHALE_LAB": str(config)},
    )
    journal = json.loads((tmp_path / "journal.json").read_text())
    log = (tmp_path / "chaostoolkit.log").read_text()
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # Chaos Toolkit's "deviated"
    assert journal["deviated"] is True and journal["status"] == "completed", log[-3000:]
    before, after = journal["steady_states"]["before"], journal["steady_states"]["after"]
    assert before["steady_state_met"] is True
    assert after["steady_state_met"] is False
    web_after = next(p for p in after["probes"] if p["activity"]["name"] == "web-journeys-served")
    assert web_after["tolerance_met"] is False and web_after["output"] < 0.9
    (change,) = [r for r in journal["run"] if r["activity"]["name"] == "roll-out-v2-in-three-waves"]
    assert change["status"] == "succeeded" and change["output"]["completed_waves"] == 3
    # Read 20 s after the last wave, longer than a lease: only renewals kept v2 everywhere.
    (during,) = [r for r in journal["run"] if r["activity"]["name"] == "architecture-during-the-change"]
    assert set(during["output"].values()) == {"v2"}, during["output"]
    (page,) = [r for r in journal["run"] if r["activity"]["name"] == "status-page-during-the-change"]
    assert page["output"]["description"] == "All systems operational"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["roll-back-to-v1", "halt"]
    assert all(r["status"] == "succeeded" for r in journal["rollbacks"])
    assert {version_on(lab, n) for n in NAMES} == {"v1"}
    assert all(faults_on(lab, n) == [] for n in NAMES)


def test_an_interrupted_experiment_leaves_the_lab_on_v1_by_the_lease(live_lab, tmp_path):
    config, lab = live_lab
    assert {version_on(lab, n) for n in NAMES} == {"v1"}
    chaos = subprocess.Popen(
        # Straight to the method: this test is about what an interruption leaves, not the hypothesis.
        chaos_run(config, tmp_path, "--hypothesis-strategy", "after-method-only"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"FAILWHALE_LAB": str(config)},
    )
    try:
        # Mid-method: the change is out (the rollout's pause), and this run renews its leases.
        deadline = time.monotonic() + 60
        while {version_on(lab, n) for n in NAMES} != {"v2"}:
            assert time.monotonic() < deadline and chaos.poll() is None, "the change never went out"
            time.sleep(0.5)
        chaos.send_signal(signal.SIGINT)
        chaos.wait(30)
        interrupted_at = time.monotonic()
    finally:
        if chaos.poll() is None:
            chaos.kill()
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "interrupted" and not journal.get("rollbacks")  # Chaos Toolkit skipped them
    while left := [n for n in NAMES if version_on(lab, n) != "v1"]:
        assert time.monotonic() - interrupted_at < LEASE_S + 5, f"still on v2: {left}"
        time.sleep(0.5)

"""A runner killed with SIGKILL in the middle of a fault and an architecture change leaves nothing
behind: the fault lapses by its TTL, the change by its lease."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from chaos.promql import scalar
from services.common.app import read_token
from services.config import load_lab_config
from tests.integration.conftest import write_lab_config
from tests.integration.test_failwhale_up import start_up

pytestmark = pytest.mark.integration

ATTACH = Path(__file__).parents[1] / "chaos" / "data" / "attach-rollout.yaml"
LEASE_S = 15  # the lease a run's architecture changes are made under
WEB_NOT_FAILED = (
    'sum(rate(failwhale_journeys_total{client="web",outcome!="failed"}[5s]))'
    ' / sum(rate(failwhale_journeys_total{client="web"}[5s]))'
)


def faults_on(lab, name: str) -> list[dict]:
    req = urllib.request.Request(
        lab.url(name) + "/control/faults", headers={"Authorization": f"Bearer {read_token(lab.token_path)}"}
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        return json.load(resp)["faults"]


def version_on(lab, name: str) -> str:
    req = urllib.request.Request(
        lab.url(name) + "/control/architecture", headers={"Authorization": f"Bearer {read_token(lab.token_path)}"}
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        return json.load(resp)["version"]


def web_not_failed(lab) -> float | None:
    return scalar(lab.url("prometheus"), WEB_NOT_FAILED)


def test_sigkill_of_the_runner_mid_change_leaves_no_fault_no_v2_and_users_recover(tmp_path):
    config = write_lab_config(tmp_path)
    lab = load_lab_config(config)
    up, _ = start_up(config, "--users", "12", "--web-share", "0.5", "--shape", "constant", "--load-duration", "150")
    try:
        time.sleep(3)
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaos.cli",
                "run",
                str(ATTACH),
                "--attach",
                "--config",
                str(config),
                "--out",
                str(tmp_path / "reports"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = runner.stdout.readline()
            if "v2 everywhere: ok" in line or not line:
                break
        assert faults_on(lab, "timeline"), "the fault should be active"
        names = ["web", "edge", "api-1", "api-2", "api-3", "api-4", "auth", "timeline", "tweets", "notifications"]
        assert {version_on(lab, n) for n in names} == {"v2"}
        killed_at = time.monotonic()
        runner.send_signal(signal.SIGKILL)  # no rollback can run
        runner.communicate()
        time.sleep(2)
        assert all(f["expires_in_s"] <= 10 for f in faults_on(lab, "timeline"))
        while faults_on(lab, "timeline"):
            assert time.monotonic() - killed_at < 12, "the fault outlived its 10 s TTL"
            time.sleep(0.5)
        # Nobody renews the change any more: every process is back on v1 within its lease.
        while left := {n for n in names if version_on(lab, n) != "v1"}:
            assert time.monotonic() - killed_at < LEASE_S + 5, f"still on v2: {sorted(left)}"
            time.sleep(0.5)
        # The website comes back by itself once the fault and the change have lapsed.
        deadline = time.monotonic() + 30
        while (ratio := web_not_failed(lab)) is None or ratio < 0.9:
            assert time.monotonic() < deadline, f"web journeys did not recover: {ratio}"
            time.sleep(1)
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=30)

"""The kill switch against a running lab: faults gone and baselines restored in under a second."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from services.common.app import read_token

pytestmark = pytest.mark.integration


def control(lab, name: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    token = read_token(lab.lab.token_path)
    req = urllib.request.Request(
        lab.url(name) + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        return resp.status, json.load(resp)


def failwhale(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args, "--config", str(lab.lab.source)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_halt_removes_every_fault_and_restores_baselines_fast(lab):
    v2 = yaml.safe_load(lab.lab.architecture_path.read_text())
    v2["version"] = "v2"
    for name in ("api-1", "api-2"):
        assert control(lab, name, "PUT", "/control/architecture", {"architecture": v2})[0] == 200
    for name in ("timeline", "auth", "edge"):
        assert control(lab, name, "POST", "/control/faults", {"faults": [{"kind": "error", "ttl_s": 600}]})[0] == 201

    status = failwhale(lab, "status")
    assert "api-1          yes     v2" in status.stdout and "error (" in status.stdout, status.stdout
    # Nobody renews these changes: each shows the lease it lapses by (15 s by default).
    assert re.search(r"^api-2 +yes +v2 +1[0-5]s left", status.stdout, re.M), status.stdout
    assert re.search(r"^timeline +yes +v1 +- ", status.stdout, re.M), status.stdout

    started = time.monotonic()
    result = failwhale(lab, "halt")
    assert result.returncode == 0, result.stderr
    assert "halted 10 of 10 processes" in result.stdout and "3 fault(s) removed" in result.stdout
    took = float(result.stdout.split(" in ")[1].split("s:")[0])
    assert took < 1.0, result.stdout
    assert time.monotonic() - started < 10  # including interpreter start-up

    for name in ("api-1", "api-2", "timeline", "auth", "edge"):
        answer = control(lab, name, "GET", "/control/architecture")[1]
        assert answer["version"] == "v1" and answer["architecture"]["version"] == "v1"  # the whole document too
        assert control(lab, name, "GET", "/control/faults")[1]["faults"] == []


def test_control_refuses_processes_outside_the_lab(lab):
    from chaos.control import LabControl
    from chaos.errors import BadInput

    ctl = LabControl.connect(lab.lab, lab.arch)
    with pytest.raises(BadInput, match="not part of the lab: example.com"):
        ctl.instances(["example.com"])
    assert "prometheus" not in ctl.instances()

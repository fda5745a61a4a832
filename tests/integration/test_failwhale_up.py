"""``failwhale up`` as a user runs it: ready with URLs, and nothing left behind when it stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import write_lab_config

pytestmark = pytest.mark.integration

FAILWHALE = [sys.executable, "-m", "chaos.cli"]


def lab_pids(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (the test's own folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                pids.append(int(entry.name))
    return pids


def start_up(config: Path, *extra: str, headless: bool = True) -> tuple[subprocess.Popen, list[str]]:
    cmd = [*FAILWHALE, "up", "--config", str(config), *(["--headless"] if headless else []), "--users", "4", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("press Ctrl-C"):
            return proc, lines
    proc.kill()
    raise AssertionError(f"failwhale up did not become ready: {lines} {proc.stderr.read()}")


def wait_gone(marker: str, timeout_s: float = 8.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := lab_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_up_prints_urls_and_ctrl_c_leaves_no_process(tmp_path):
    config = write_lab_config(tmp_path)
    ports = yaml.safe_load(config.read_text())["ports"]
    proc, lines = start_up(config)
    try:
        assert any(line.startswith("lab ready in") for line in lines), lines
        text = "\n".join(lines)
        assert f"http://127.0.0.1:{ports['web']}/" in text
        assert f"http://127.0.0.1:{ports['prometheus']}/" in text
        assert f"http://127.0.0.1:{ports['dashboard']}/" in text
        assert any(line.startswith("  load ") and "4 users at peak" in line for line in lines), lines
        children = set(lab_pids(str(tmp_path))) - {proc.pid}
        assert len(children) == 13  # 10 services, Prometheus, the dashboard and the load generator
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped 13 processes" in out
    assert wait_gone(str(tmp_path)) == []


def test_children_die_with_a_killed_supervisor(tmp_path):
    config = write_lab_config(tmp_path)
    proc, _ = start_up(config)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.communicate()
    assert wait_gone(str(tmp_path)) == []


def test_port_in_use_is_one_line_naming_the_port(tmp_path):
    config = write_lab_config(tmp_path)
    port = yaml.safe_load(config.read_text())["ports"]["timeline"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = subprocess.run([*FAILWHALE, "up", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and f"port {port} (timeline) is already in use" in lines[0]
    assert lab_pids(str(tmp_path)) == []  # nothing was half started


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("ports:\n  web: 80\n", ":2: ports.web: Input should be greater than or equal to 1024"),
        ("ports:\n  web: 8080\n  edge: 8080\n", ":1: ports: edge and web both use port 8080"),
        ("host: 0.0.0.0.0\nports: {web: 8080}\n", ":1: host: not an IP address"),
        ("host: 0.0.0.0\nports: {web: 8080}\n", ":1: host: 0.0.0.0 is not a loopback address"),
        ("ports: {web: eighty}\n", ":1: ports.web: Input should be a valid integer"),
        ("", ":1: (top level): expected a mapping of fields, got an empty file"),
        ("ports: {web: 18080}\nspeed: 3\n", ":2: speed: unknown field"),
        ("ports: [\n", ":1: YAML syntax error"),  # an unclosed bracket: the last line, not past it
    ],
)
def test_malformed_lab_config_is_one_line_with_file_and_line(tmp_path, content, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    result = subprocess.run([*FAILWHALE, "up", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {config}") and expected in result.stderr, result.stderr


def test_locusts_web_ui_refuses_a_swarm_without_the_labs_password(tmp_path):
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    from services.config import load_lab_config

    config = write_lab_config(tmp_path)
    lab = load_lab_config(config)
    proc, lines = start_up(config, headless=False)
    try:
        assert any("user failwhale, password in" in line for line in lines), lines
        secret = (lab.data_path / "locust-ui.secret").read_text().strip()
        assert (lab.data_path / "locust-ui.secret").stat().st_mode & 0o077 == 0
        url = lab.url("locust")
        form = urllib.parse.urlencode(
            {"user_count": "500", "spawn_rate": "50", "host": "http://third-party.example"}
        ).encode()
        deadline = time.monotonic() + 20
        while True:  # the UI comes up a moment after the services
            try:
                urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=form), timeout=5)
                raise AssertionError("an unauthenticated /swarm was accepted")
            except urllib.error.HTTPError as e:
                assert e.code == 401, e.code
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "Locust's UI did not come up"
                time.sleep(0.5)
        auth = {"Authorization": "Basic " + base64.b64encode(f"failwhale:{secret}".encode()).decode()}
        with urllib.request.urlopen(urllib.request.Request(url + "/", headers=auth), timeout=5) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)

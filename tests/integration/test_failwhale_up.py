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


def start_up(config: Path, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    cmd = [*FAILWHALE, "up", "--config", str(config), "--headless", "--users", "4", *extra]
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

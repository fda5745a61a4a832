"""Run a command as a person at a terminal would: its stdout and stderr on a pseudo-terminal of
100 columns, everything it drew returned as text (escape sequences included)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Drawn:
    returncode: int
    out: str  # what the terminal received, escape sequences and all


def run_in_terminal(cmd: list[str], timeout_s: float) -> Drawn:
    leader, follower = pty.openpty()
    env = os.environ | {"COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(cmd, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(
                f"{cmd[:4]} still running after {timeout_s:.0f}s:\n{out.decode(errors='replace')[-3000:]}"
            )
        proc.wait(10)
    finally:
        os.close(leader)
    return Drawn(proc.returncode, out.decode(errors="replace"))

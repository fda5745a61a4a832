"""Progress as people expect it: in a terminal, one status area that updates in place (bars for
the catalog and the scenario clock, the journeys served); through a pipe, plain lines."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

from chaos.engine.progress import PlainProgress, Tick, for_output

# Two scenarios of a catalog, four ticks each, and a message between them.
SCRIPT = """
import time
from chaos.engine.progress import Tick, for_output
p = for_output()
p.catalog(["first", "second"])
for name in ("first", "second"):
    p.scenario(name)
    p.say(f"=== {name} ===")
    for s in (10, 20, 30, 40):
        p.tick(Tick(s, 40, 40 - s, "outage" if s > 15 else "baseline", 0.12, 0.97, "rollback"))
        time.sleep(0.3)
p.close()
"""


def run_in_terminal() -> str:
    """The script's output as a terminal (a pseudo-terminal, 100 columns) receives it."""
    leader, follower = pty.openpty()
    env = os.environ | {"COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the script ended
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(leader)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_in_a_terminal_one_area_updates_in_place_with_bars_and_the_users():
    out = run_in_terminal()
    assert "\x1b[2K" in out or "\x1b[1A" in out  # erase and cursor-up: the area is redrawn, not appended to
    assert "━" in out  # the bars
    assert "catalog: second" in out and "phase outage" in out and "40s of 40s" in out
    assert "journeys not failed now: web  12%   app  97%" in out
    assert "=== first ===" in out and "=== second ===" in out  # messages still scroll above
    assert "(scenario time)" not in out  # no plain progress lines in a terminal


def test_through_a_pipe_each_tick_is_one_plain_line():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    lines = done.stdout.splitlines()
    ticks = [line for line in lines if "(scenario time)" in line]
    assert len(ticks) == 8
    assert ticks[-1] == Tick(40, 40, 0, "outage", 0.12, 0.97, "rollback").line()
    assert lines[0] == "=== first ==="


def test_a_tick_says_no_reading_apart_from_no_journeys():
    assert "web   ?  app   ?" in Tick(1, 40, 39, "-", None, None, "x", read=False).line()
    assert "web   -  app  50%" in Tick(1, 40, 39, "-", None, 0.5, "x").line()


def test_for_output_picks_plain_lines_for_anything_but_a_terminal():
    stream = io.StringIO()
    progress = for_output(stream)
    assert isinstance(progress, PlainProgress)
    progress.tick(Tick(5, 40, 35, "baseline", 1.0, 1.0, "step 2"))
    assert stream.getvalue() == Tick(5, 40, 35, "baseline", 1.0, 1.0, "step 2").line() + "\n"

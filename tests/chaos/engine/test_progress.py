"""Progress as people expect it: in a terminal, one status area that updates in place (bars for
the catalog and the scenario clock, the journeys served); through a pipe, plain lines."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from rich.console import Console

from chaos.engine.progress import LiveProgress, PlainProgress, Tick, for_output
from tests import terminal

# Two scenarios of a catalog, four ticks each, and a message between them; PLAYED of them end
# (the last one is interrupted otherwise).
SCRIPT = """
import sys, time
from chaos.engine.progress import Tick, for_output
p = for_output()
p.catalog(["first", "second"])
for n, name in enumerate(("first", "second"), 1):
    p.scenario(name)
    p.say(f"=== {name} ===")
    for s in (10, 20, 30, 40):
        p.tick(Tick(s, 40, 40 - s, "outage" if s > 15 else "baseline", 0.12, 0.97, "rollback"))
        time.sleep(0.3)
    if n <= PLAYED:
        p.played(name)
p.close()
"""


def run_in_terminal(played: int = 2) -> str:
    """The script's output as a terminal receives it."""
    drawn = terminal.run_in_terminal([sys.executable, "-c", SCRIPT.replace("PLAYED", str(played))], timeout_s=30)
    assert drawn.returncode == 0, drawn.out
    return drawn.out


def test_in_a_terminal_one_area_updates_in_place_with_bars_and_the_users():
    out = run_in_terminal()
    assert "\x1b[2K" in out or "\x1b[1A" in out  # erase and cursor-up: the area is redrawn, not appended to
    assert "━" in out  # the bars
    assert "catalog: second" in out and "phase outage" in out and "40s of 40s" in out
    assert "journeys not failed now: web  12%   app  97%" in out
    assert "=== first ===" in out and "=== second ===" in out  # messages still scroll above
    assert "(scenario time)" not in out  # no plain progress lines in a terminal
    assert "2 of 2 done" in out


def test_an_interrupted_catalog_does_not_show_its_last_scenario_as_done():
    out = run_in_terminal(played=1)
    assert "1 of 2 done" in out and "2 of 2 done" not in out


def test_in_a_terminal_events_follow_each_other_without_blank_lines():
    # The runner starts each event with a blank line for plain output; the live area needs none.
    out = io.StringIO()
    live = LiveProgress(Console(file=out, force_terminal=True, width=100))
    live.say("steady state before: held")
    live.say("\n[    10s] timeline answers 503: ok")
    live.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", out.getvalue())
    assert "steady state before: held\n[    10s] timeline answers 503: ok\n" in text, repr(text)


def test_through_a_pipe_each_tick_is_one_plain_line():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("PLAYED", "2")], capture_output=True, text=True, timeout=30
    )
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

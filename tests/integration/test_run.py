"""``failwhale run`` end to end: a held verdict with the run-folder contract, played in a terminal
(its live status area); a stop mid-outage (SIGTERM) and mid-rollout (Ctrl-C), through pipes
(plain lines): both signals take the same path, each is sent once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos import records
from chaos.records import JournalEntry, JournalFile, RollbackEntry, Series, StepEntry, Summary
from tests.integration.conftest import write_lab_config
from tests.integration.test_failwhale_up import lab_pids
from tests.terminal import run_in_terminal

pytestmark = pytest.mark.integration

QUICK = Path(__file__).parents[1] / "chaos" / "data" / "quick.yaml"


def run_cmd(tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "chaos.cli",
        "run",
        str(QUICK),
        "--config",
        str(write_lab_config(tmp_path)),
        "--out",
        str(tmp_path / "reports"),
    ]


def only_run_dir(tmp_path: Path) -> Path:
    (run_dir,) = (d for d in (tmp_path / "reports").iterdir() if d.is_dir())
    return run_dir


def summary_of(run_dir: Path) -> Summary:
    return records.read(run_dir / "summary.json", Summary)


def journal_of(run_dir: Path) -> list[JournalEntry]:
    return records.read(run_dir / "journal.json", JournalFile).entries


def action(e: JournalEntry) -> str | None:
    """What a step or a final rollback did; other entries have no action."""
    return e.action if isinstance(e, (StepEntry, RollbackEntry)) else None


def test_a_scenario_run_in_a_terminal_holds_and_writes_the_run_folder(tmp_path):
    drawn = run_in_terminal(run_cmd(tmp_path), timeout_s=240)
    assert drawn.returncode == 0, drawn.out[-3000:]
    assert "verdict: HELD" in drawn.out
    # In a terminal, one live area (bar, phase, users) redrawn in place; no plain progress lines.
    assert "\x1b[2K" in drawn.out or "\x1b[1A" in drawn.out
    assert "━" in drawn.out and "phase outage" in drawn.out and "journeys not failed now: web" in drawn.out
    assert "(scenario time)" not in drawn.out
    run_dir = only_run_dir(tmp_path)
    assert run_dir.name.startswith("quick-")
    # The run-folder contract: each file reads back as its record, every field checked.
    summary = summary_of(run_dir)
    records.read(run_dir / "series.json", Series)
    assert summary.verdict == "held" and summary.scenario == "quick" and summary.speed == 1
    outage = summary.phases["outage"]
    for client in ("web", "app"):
        assert outage.client(client).journeys > 0, client
    # The split comes from how the clients behave against the same broken backend.
    assert outage.web.failure_ratio is not None and outage.app.failure_ratio is not None
    assert outage.web.failure_ratio >= 0.7 and outage.app.failure_ratio <= 0.35
    assert outage.app.degraded > 0
    baseline = summary.phases["baseline"].web.failure_ratio
    assert baseline is not None and baseline <= 0.05
    assert summary.user_reports["website"] > summary.user_reports["app"]
    assert summary.health_checks is not None and summary.health_checks >= 0.99
    assert summary.acked_tweets > 0 and summary.lost_tweets == 0
    assert [e.held for e in summary.expectations] == [True] * 4
    journal = journal_of(run_dir)
    kinds = [(e.kind, action(e), e.outcome) for e in journal]
    assert kinds == [
        ("steady_state", None, "held"),
        ("step", "note", "ok"),
        ("step", "inject", "ok"),
        ("step", "rollback", "ok"),
        ("rollback", "halt", "ok"),
        ("steady_state", None, "held"),
    ]
    assert all(e.ended is not None and e.ended >= e.started for e in journal)
    assert lab_pids(str(tmp_path)) == []


def test_sigterm_mid_outage_rolls_back_and_says_aborted(tmp_path):
    sig = signal.SIGTERM
    proc = subprocess.Popen(run_cmd(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "timeline answers 503: ok" in line:
            break
    else:
        proc.kill()
        raise AssertionError("the fault step never ran:\n" + "".join(lines))
    time.sleep(3)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    out = "".join(lines) + out
    assert proc.returncode == 130, out[-3000:]
    assert f"interrupted by {sig.name}: rolling back" in out and "rollback: halt: ok" in out
    # Through a pipe: one plain line per progress tick, no terminal drawing.
    assert "(scenario time)" in out and "\x1b[" not in out
    assert summary_of(only_run_dir(tmp_path)).verdict == "aborted"
    journal = journal_of(only_run_dir(tmp_path))
    assert journal[-1].kind == "rollback" and journal[-1].outcome == "ok"
    assert lab_pids(str(tmp_path)) == []


ROLLOUT = Path(__file__).parents[1] / "chaos" / "data" / "rollout.yaml"


def test_ctrl_c_during_a_rollout_rolls_it_back_and_exits_130(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "chaos.cli",
        "run",
        str(ROLLOUT),
        "--config",
        str(write_lab_config(tmp_path)),
        "--out",
        str(tmp_path / "reports"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("wave 1/2:"):
            break
    else:
        proc.kill()
        raise AssertionError("the rollout never started:\n" + "".join(lines))
    assert "api-1 now run v2-test" in lines[-1]
    time.sleep(2)  # baking, waiting for wave 2
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    out = "".join(lines) + out
    assert proc.returncode == 130, out[-3000:]
    assert "wave 2/2" not in out
    assert summary_of(only_run_dir(tmp_path)).verdict == "aborted"
    journal = journal_of(only_run_dir(tmp_path))
    finals = [(e.action, e.outcome) for e in journal if isinstance(e, RollbackEntry)]
    assert finals == [("rollback", "ok"), ("halt", "ok")]
    assert lab_pids(str(tmp_path)) == []


FAILING = Path(__file__).parents[1] / "chaos" / "data" / "failing-step.yaml"


def test_a_failed_step_deviates_and_still_rolls_back(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "chaos.cli",
        "run",
        str(FAILING),
        "--config",
        str(write_lab_config(tmp_path)),
        "--out",
        str(tmp_path / "reports"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert (
        "verdict: DEVIATED (step 2 (fault on a process that is not there) failed: not part of the lab: nowhere"
        in result.stdout
    )
    journal = journal_of(only_run_dir(tmp_path))
    steps = [(e.action, e.outcome) for e in journal if isinstance(e, StepEntry)]
    assert steps == [("inject", "ok"), ("inject", "failed")]  # the timeline stopped at the failed step
    assert [(e.action, e.outcome) for e in journal if isinstance(e, RollbackEntry)] == [("halt", "ok")]
    assert summary_of(only_run_dir(tmp_path)).verdict == "deviated"

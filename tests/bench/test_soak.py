"""``python -m bench.soak --smoke``: the soak benchmark still runs and prints its table."""

from __future__ import annotations

import re

import pytest

from tests.bench.conftest import run_bench

pytestmark = pytest.mark.integration

PROCESSES = ("web", "edge", "api-1", "api-2", "api-3", "api-4", "auth", "timeline", "tweets", "notifications")
# process, RSS early, RSS end, growth, log size
ROW = re.compile(
    r"^(\S+) +([\d.]+ (?:MiB|KiB)) +([\d.]+ (?:MiB|KiB)) +([+-][\d.]+%) +([\d.]+ (?:MiB|KiB))(?:  <- .+)?$", re.M
)


def test_smoke_run_plays_a_cycle_and_prints_every_process():
    done = run_bench("soak", "--smoke", timeout_s=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert re.search(r"^cycle 1: \w+ on \w+ for \d+s$", out, re.M), out
    assert "cycle 1: v2 on every process" in out and "cycle 1: rolled back" in out, out
    rows = {m[1] for m in ROW.finditer(out)}
    assert set(PROCESSES) <= rows, out
    assert re.search(r"^1 cycle\(s\); journeys failed in the quiet \d+s after the last fault: \d+$", out, re.M), out
    assert "smoke run:" in out


@pytest.mark.parametrize("users", ["0", "20000"])
def test_a_load_it_cannot_run_is_one_line_before_any_lab_starts(users, capsys):
    from bench.soak import main

    assert main(["--users", users, "--minutes", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --users: the load's users must be from 1 to 10,000") and err.count("\n") == 1

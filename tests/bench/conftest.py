"""Running a benchmark as `make bench` does: its own process, from the repository root."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run_bench(module: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess:
    """``python -m bench.<module> *args``, its output captured.

    Past ``timeout_s`` it gets SIGTERM, not SIGKILL: the benchmark then stops every process it
    started, as it does on Ctrl-C, and the test fails with what it printed.
    """
    cmd = [sys.executable, "-m", f"bench.{module}", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd[1:])} did not finish within {timeout_s:.0f} s:\n{out[-3000:]}\n{err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def figure(text: str) -> float:
    """A figure as the benchmarks print it: ``1,735`` or ``0.95``."""
    return float(text.replace(",", ""))


def is_quotient(printed: float, places: int, num: float, den: float, num_step: float = 1, den_step: float = 1) -> bool:
    """Whether ``printed`` (``places`` decimals) can be num / den, when num and den were printed
    rounded to ``num_step`` and ``den_step``: the report's ratios must agree with its table."""
    slack = 0.5 * 10**-places
    lo = (num - num_step / 2) / (den + den_step / 2)
    hi = (num + num_step / 2) / (den - den_step / 2)
    return lo - slack <= printed <= hi + slack

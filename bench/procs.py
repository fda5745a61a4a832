"""Chores both benchmarks share: CPU time from /proc, readiness polls, clean stops, and the
``--smoke`` run that keeps a benchmark from rotting."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Printed by a --smoke run beside its judgements, which it cannot support.
SMOKE_NOTE = (
    "smoke run: a few seconds of load, to show that the benchmark still runs end to end; "
    "too short for its figures or its verdicts to mean anything"
)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (its threads included), from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http_ok(url: str, proc: subprocess.Popen, timeout_s: float) -> str | None:
    """Poll ``url`` until it answers 200: None when it did, "exited" or "timeout" when not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return "timeout"


def stop_processes(procs: list[subprocess.Popen], grace_s: float = 5.0) -> None:
    """SIGINT (aiohttp's run_app and Locust both stop cleanly on it), then SIGKILL after ``grace_s``."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def parse_args(p: argparse.ArgumentParser, argv: list[str] | None, smoke: dict[str, Any]) -> argparse.Namespace:
    """``p``'s arguments; with ``--smoke``, ``smoke`` replaces the defaults (flags given still win).

    ``smoke`` may also set attributes that are no option (a warm-up, a settling time): ``p``
    gives them their full-run values with ``set_defaults``.
    """
    args = p.parse_args(argv)
    if args.smoke:
        p.set_defaults(**smoke)
        args = p.parse_args(argv)
    return args


class BenchError(Exception):
    """Something that stops a benchmark; :func:`run_main` prints it on one line and exits 2."""


def run_main(bench: Callable[[argparse.Namespace], int], args: argparse.Namespace, interrupted: str) -> int:
    """Run a benchmark as its ``main()`` does: one line and 2 for a BenchError, 130 for Ctrl-C.

    SIGTERM (e.g. a CI timeout) exits like Ctrl-C does, so the finally blocks that stop every
    process still run; the old handler is put back, since tests call main() in-process too.
    """
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return bench(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; {interrupted}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)

"""Does the lab stay the same size over a long game? Evening load, with faults and a rollout cycling.

One lab at baseline (v1), loaded by the lab's Locust users with the evening curve, for
``--minutes`` (default 30). Every ``--cycle`` seconds (default 60) one cycle plays, the kinds of
faults taking turns: a fault on one backend for a third of the cycle (latency on the timeline,
errors from notifications, a blackhole in tweets, a rate limit on auth), then v2 rolled out to
every process under a lease and rolled back a third of the cycle later. The last stretch of the
run is quiet: no fault, no change.

It prints, for every process, its resident memory (RSS) early on (at a sixth of the run, once
caches and pools have filled: minute 5 of 30) and at the end, and the growth between the two,
the size of its log, and the journeys that failed in the quiet tail after the last fault ended,
which should be none. A process whose RSS grows by more than 15% over the run, or a log over its
cap, is marked.

It is a benchmark, not a test: it exits 0 whatever it measures, 2 with one line when it cannot
measure, 130 when interrupted (everything it started stops first). ``--smoke`` runs a lab for
about 20 s with one short cycle, to show that the benchmark still runs; its figures mean nothing.

Run it from the repository root::

    python -m bench.soak                      # 30 minutes
    python -m bench.soak --minutes 10 --cycle 30
    python -m bench.soak --smoke
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.procs import SMOKE_NOTE, BenchError, parse_args, run_main
from chaos.control import LabControl
from chaos.errors import ChaosError
from chaos.lab.logs import older
from chaos.lab.ports import free_port_lab_config
from chaos.lab.supervisor import LOADGEN, Lab, LoadOptions
from chaos.lease import LeaseKeeper
from chaos.promql import scalar
from chaos.rollout import plan_waves, rollback, rollout
from services.architecture import load_architecture
from services.config import load_lab_config

REPO_ROOT = Path(__file__).resolve().parents[1]
V1 = REPO_ROOT / "services" / "architecture" / "v1.yaml"
V2 = REPO_ROOT / "services" / "architecture" / "v2.yaml"
FAULTS = [  # (target, fault): one per cycle, in turn
    ("timeline", {"kind": "latency", "latency_ms": 800}),
    ("notifications", {"kind": "error", "status": 503}),
    ("tweets", {"kind": "blackhole"}),
    ("auth", {"kind": "rate_limit", "bucket": "login", "rate_per_s": 1, "burst": 1}),
]
RSS_GROWTH_LIMIT = 0.15
SMOKE = {"minutes": 20 / 60, "cycle": 8.0, "users": 20, "quiet_s": 6.0}


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def failed_journeys(prometheus_url: str, seconds: float) -> float | None:
    window = f"{max(1, round(seconds))}s"
    return scalar(prometheus_url, f'sum(increase(failwhale_journeys_total{{outcome="failed"}}[{window}])) or vector(0)')


def cycle(control: LabControl, keeper: LeaseKeeper, n: int, cycle_s: float, prometheus_url: str, say) -> None:
    target, fault = FAULTS[n % len(FAULTS)]
    third = cycle_s / 3
    answers = asyncio.run(
        control.each("POST", "/control/faults", json={"faults": [{**fault, "ttl_s": third}]}, only=[target])
    )
    say(
        f"cycle {n + 1}: {fault['kind']} on {target} for {third:.0f}s"
        + ("" if all(a.ok for a in answers) else " (refused)")
    )
    time.sleep(third)
    new = load_architecture(V2)
    result = asyncio.run(
        rollout(
            control, new, plan_waves(new, [1.0]), bake_s=0, guard=None, prometheus_url=prometheus_url, keeper=keeper
        )
    )
    say(f"cycle {n + 1}: v2 on every process" if result.ok else f"cycle {n + 1}: rollout rolled back ({result.reason})")
    time.sleep(third)
    stuck = asyncio.run(rollback(control, keeper=keeper))
    say(f"cycle {n + 1}: rolled back" + (f" ({', '.join(stuck)} did not confirm)" if stuck else ""))
    time.sleep(third)


def bench(args: argparse.Namespace) -> int:
    total_s = args.minutes * 60
    if total_s < args.cycle + args.quiet_s:
        raise BenchError(f"--minutes {args.minutes:g} leaves no room for one {args.cycle:g}s cycle and the quiet tail")
    try:  # checked before the lab starts
        load = LoadOptions(peak_users=args.users, web_share=0.5, shape="evening", duration_s=total_s + 5)
    except ChaosError as e:
        raise BenchError(f"--users: {e}") from e
    with tempfile.TemporaryDirectory(prefix="failwhale-soak-") as folder:
        cfg = load_lab_config(free_port_lab_config(Path(folder), V1))
        try:
            lab = Lab(cfg, load_architecture(cfg.architecture_path))
            lab.start()
        except ChaosError as e:
            raise BenchError(str(e)) from e
        try:
            return soak(lab, args, total_s, load)
        finally:
            lab.stop()


def soak(lab: Lab, args: argparse.Namespace, total_s: float, load: LoadOptions) -> int:
    print(f"soak: {args.users} users, evening curve, {total_s / 60:g} min; a fault and a rollout every {args.cycle:g}s")
    lab.start_load(load, None)
    control = LabControl.connect(lab.lab, lab.arch)
    prometheus_url = lab.url("prometheus")
    pids = {name: p.popen.pid for name, p in lab.procs.items() if p.popen is not None and name != LOADGEN}
    started = time.monotonic()
    early_at = started + total_s / 6
    early: dict[str, int | None] = {}
    n = 0
    with LeaseKeeper(control) as keeper:
        while time.monotonic() - started + args.cycle + args.quiet_s <= total_s:
            cycle(control, keeper, n, args.cycle, prometheus_url, print)
            n += 1
            if not early and time.monotonic() >= early_at:
                early = {name: rss_kib(pid) for name, pid in pids.items()}
    if not early:
        early = {name: rss_kib(pid) for name, pid in pids.items()}
    quiet_from = time.monotonic()
    time.sleep(max(0.0, total_s - (quiet_from - started)))
    quiet_s = time.monotonic() - quiet_from
    # Journeys begun under the last fault may end a moment into the tail: leave them a few seconds.
    failed_after = failed_journeys(prometheus_url, max(1.0, quiet_s - 3))
    end = {name: rss_kib(pid) for name, pid in pids.items()}
    logs = {name: file_size(p.log_path) for name, p in lab.procs.items()}
    kept = {name: file_size(older(p.log_path)) for name, p in lab.procs.items()}
    print()
    print(
        f"logs are capped at {lab.log_cap_bytes / 2**20:g} MiB a file, one older file kept: the log column is "
        "the current file"
    )
    print(f"{'process':<15}{'RSS early':>12}{'RSS end':>12}{'growth':>9}{'log':>12}")
    for name in pids:
        a, b = early.get(name), end.get(name)
        growth = (b - a) / a if a and b else None
        marks = (["grows"] if growth is not None and growth > RSS_GROWTH_LIMIT else []) + (
            ["log over its cap"]
            if logs.get(name, 0) > lab.log_cap_bytes or kept.get(name, 0) > lab.log_cap_bytes
            else []
        )
        mark = "".join(f"  <- {m}" for m in marks)
        print(
            f"{name:<15}{_kib(a):>12}{_kib(b):>12}{'-' if growth is None else f'{100 * growth:+.1f}%':>9}"
            f"{_kib(logs.get(name, 0) // 1024):>12}{mark}"
        )
    print()
    print(
        f"{n} cycle(s); journeys failed in the quiet {quiet_s:.0f}s after the last fault: "
        f"{'-' if failed_after is None else f'{failed_after:.0f}'}"
    )
    if args.smoke:
        print(SMOKE_NOTE)
    return 0


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _kib(kib: int | None) -> str:
    if kib is None:
        return "-"
    return f"{kib / 1024:.1f} MiB" if kib >= 1024 else f"{kib} KiB"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run (default: %(default)s)")
    p.add_argument(
        "--cycle", type=float, default=60.0, help="seconds per fault-and-rollout cycle (default: %(default)s)"
    )
    p.add_argument("--users", type=int, default=120, help="users at the evening's peak (default: %(default)s)")
    p.add_argument("--smoke", action="store_true", help="about 20 s with one short cycle: does it still run?")
    p.set_defaults(quiet_s=60.0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(bench, parse_args(parser(), argv, SMOKE), "interrupted: every process stopped")


if __name__ == "__main__":
    raise SystemExit(main())

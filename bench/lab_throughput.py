"""How many requests/s does the whole lab sustain end to end, against what Locust itself can drive?

Two runs of the same Locust (one process, FastHttpUser, the same number of users, the same
duration), one after the other, on 127.0.0.1 only:

* ``lab``     -- the whole lab at baseline (architecture v1): every service process and a real
                 Prometheus, started by the lab supervisor, loaded by the lab's own locustfile
                 (``shape constant``: web-site and mobile-app users, 1-4 s between journeys);
* ``ceiling`` -- one bare aiohttp process answering ``GET /`` with a small JSON, loaded by users
                 that send that GET in a loop with no wait at all (``constant(0)``): the most
                 requests/s this Locust can drive on this machine.

Both runs count HTTP requests only (the lab's journey rows, Locust's ``JOURNEY`` type, are left
out) over the steady part of the run: from 5 s after the last user has started to the moment
the load starts stopping. A small probe, loaded into Locust beside the locustfile (a second
``-f`` after the lab supervisor's: Locust takes the last one), records every request's latency
by the second it ended, so p50/p99 are exact over the window (to 0.1 ms below 10 ms, 1 ms below
100 ms, 2 significant digits above), not blended from Locust's per-row percentiles. The
journeys' ok share per client (web, app) is the sanity check: under 99% the lab is saturated,
and its requests/s counts failed and retried requests. CPU per process over the window, read
from /proc, shows which process is the bottleneck (one Python process cannot use more than one
core), and CPU used by anything else on the machine flags a run disturbed by other work.

Prints the machine, the settings, a table of both runs and the ratio lab / ceiling. It is a
benchmark, not a test: it exits 0 whatever it measures, and 2 with one line when it cannot
measure (Prometheus missing, a port in use, a process that does not start).

Users wait 1-4 s between journeys, so the lab's load grows with --users until the lab is
saturated; at the default, 1000 users, a 2-core machine is saturated (measured on a quiet
machine: lab 602 req/s at p99 9.5 s with 1.89 cores busy and 3.15 ms of CPU per request, Locust
0.78 ms of it; ceiling 2,983 req/s, ratio 0.20). Figures swing by 10-20% between runs on this
kind of virtual machine: compare variants within one run, or by CPU per request. The ceiling
also depends on --users: a busy Locust process spends more per request the more users it runs.

Run it from the repository root::

    python -m bench.lab_throughput                    # defaults: about 2 minutes
    python -m bench.lab_throughput --users 400 --duration 90 --keep
    python -m bench.lab_throughput --smoke            # about 20 s: does it still run?
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import SMOKE_NOTE, BenchError, cpu_seconds, parse_args, run_main, stop_processes, wait_http_ok
from chaos.lab.ports import free_port_lab_config, free_ports
from chaos.lab.supervisor import die_with_parent
from services.common.app import serve

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
ARCHITECTURE = REPO_ROOT / "services" / "architecture" / "v1.yaml"
WEB_SHARE = 0.4  # the lab's default mix: 40% web-site users, 60% mobile-app users
SETTLE_S = 5  # after the last user started: every user has logged in and done a journey or two
STEADY_S = 10  # the least steady load --duration must leave after the ramp and SETTLE_S
MIN_WINDOW_S = 5  # the least steady window a run must have had (spawning can run late) to be measured
READY_TIMEOUT_S = 30.0
STOP_MARGIN_S = 45.0  # how long past --duration a Locust run may take before it is killed
# Every step once, with a steady window of about 2 s: enough to show it runs, too little to measure.
# A window of 1 s still counts, so that a busy machine (a late spawn) does not fail the smoke run.
SMOKE = {"users": 20, "spawn_rate": 20.0, "duration": 5.0, "settle_s": 1, "steady_s": 3, "min_window_s": 1}



# --------------------------------------------------------------------------- inside Locust
# The probe (bench/locust_probe.py) runs inside the Locust process (both runs); the driver loads
# it with ``-f``.

PROBE_SOURCE = f"""\
# Written by bench/lab_throughput.py: records request latencies for the benchmark.
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
from bench.locust_probe import install_probe
install_probe()
"""

BARE_LOCUSTFILE_SOURCE = PROBE_SOURCE + """
from locust import FastHttpUser, constant, task


class BareUser(FastHttpUser):
    wait_time = constant(0)  # no think time: the ceiling is what Locust can send

    @task
    def get(self):
        self.client.get("/", name="bare GET /")
"""


# --------------------------------------------------------------------------- the bare endpoint


def serve_bare(port: int) -> int:
    from aiohttp import web

    body = {"status": "ok", "service": "bare", "items": [1, 2, 3]}

    async def handle(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/", handle)
    return serve(app, HOST, port, "the bare server")


# --------------------------------------------------------------------------- the driver


@dataclass
class Result:
    name: str
    users: int
    window_s: float
    requests: int
    failed: int
    slices: list[float]  # req/s in each 5 s slice of the window, to show it held steady
    p50_ms: float
    p99_ms: float
    journeys: dict[str, Counter] = field(default_factory=dict)  # client -> outcome -> count
    cpu: dict[str, float] = field(default_factory=dict)  # process -> cores it used over the window
    locust_cpu_warning: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.window_s if self.window_s else 0.0


MACHINE = "(whole machine)"


def machine_busy_seconds() -> float:
    """CPU time every core has spent busy since boot (all of /proc/stat's first line but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user and nice]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU time of named processes and of the machine, sampled about once a second during a run."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[str, float]]] = []

    def sample(self, pids: dict[str, int]) -> None:
        now = time.time()
        cpu = {name: c for name, pid in pids.items() if (c := cpu_seconds(pid)) is not None}
        cpu[MACHINE] = machine_busy_seconds()
        self.samples.append((now, cpu))

    def shares(self, t0: float, t1: float) -> dict[str, float]:
        """Each process's CPU over [t0, t1] as a share of one core (1.0 = one core busy)."""
        inside = [s for s in self.samples if t0 - 0.6 <= s[0] <= t1 + 0.6]
        if len(inside) < 2:
            return {}
        (a_t, a), (b_t, b) = inside[0], inside[-1]
        return {n: (b[n] - a[n]) / (b_t - a_t) for n in b if n in a and b_t > a_t}


def wait_locust(proc: subprocess.Popen, timeout_s: float, sampler: CpuSampler, pids: dict[str, int]) -> int:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise BenchError(f"Locust did not stop within {timeout_s:.0f} s")
        sampler.sample(pids)
        time.sleep(max(0.0, 1.0 - (time.time() % 1.0)) + 0.05)  # just past each whole second
    return proc.returncode


def percentile(hist: Counter, q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank, seen = q * total, 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= rank:
            return ms
    return max(hist)


def read_probe(path: Path, name: str, log_path: Path, sampler: CpuSampler, args: argparse.Namespace) -> Result:
    """The steady window of one run: from ``args.settle_s`` after the last user started to the stop."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BenchError(f"the {name} run left no measurements ({path.name}: {e}); Locust log: {log_path}") from e
    marks = data["marks"]
    if "spawned" not in marks or "stopping" not in marks:
        raise BenchError(f"the {name} run never reached its full user count; Locust log: {log_path}")
    # Whole seconds only, each full of requests that ended inside it.
    first = math.ceil(marks["spawned"]) + args.settle_s
    last = math.floor(marks["stopping"]) - 1
    if last + 1 - first < args.min_window_s:
        raise BenchError(f"the {name} run had under {args.min_window_s} s of steady load: raise --duration")
    hist: Counter = Counter()
    requests = failed = 0
    per_second: Counter = Counter()
    journeys: dict[str, Counter] = {}
    for key, rec in data["seconds"].items():
        if not first <= int(key) <= last:
            continue
        requests += rec["n"]
        per_second[int(key)] = rec["n"]
        failed += rec["failed"]
        hist.update({float(ms): n for ms, n in rec["ms"].items()})
        for label, n in rec["journeys"].items():
            client, _, outcome = label.partition(" ")
            journeys.setdefault(client, Counter())[outcome] += n
    window = float(last + 1 - first)
    slices = [sum(per_second[s] for s in range(t, t + 5)) / 5 for t in range(first, last - 3, 5)]
    result = Result(
        name, int(marks.get("users", 0)), window, requests, failed, slices,
        percentile(hist, 0.50), percentile(hist, 0.99), journeys,
        cpu=sampler.shares(first, last + 1),
    )
    with contextlib.suppress(OSError):
        result.locust_cpu_warning = "CPU usage above" in log_path.read_text(errors="replace")
    return result


def check_csv(result: Result, run_dir: Path) -> None:
    """Cross-check the probe against Locust's own table, which covers the whole run (so it holds more)."""
    with contextlib.suppress(OSError, KeyError, ValueError):
        with (run_dir / "locust_stats.csv").open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["Name"] != "Aggregated"]
        total = sum(int(r["Request Count"]) for r in rows if r["Type"] != "JOURNEY")
        if total < result.requests:
            result.notes.append(f"Locust's table counted fewer requests ({total}) than the probe ({result.requests})")


# ---- the lab run -------------------------------------------------------------------------


def run_lab(args: argparse.Namespace, folder: Path, probe: Path) -> Result:
    from chaos.errors import ChaosError
    from chaos.lab.supervisor import LOADGEN, LOCUSTFILE, Lab, LoadOptions
    from services.architecture import load_architecture
    from services.config import load_lab_config
    from services.errors import ConfigError

    try:
        cfg = load_lab_config(free_port_lab_config(folder, ARCHITECTURE))
        lab = Lab(cfg, load_architecture(cfg.architecture_path))
    except ConfigError as e:
        raise BenchError(str(e)) from e
    run_dir = folder / "run"
    out = folder / "lab-probe.json"
    opts = LoadOptions(
        headless=True, shape="constant", peak_users=args.users, web_share=WEB_SHARE, duration_s=args.duration,
        # The lab's locustfile and, beside it, the probe (Locust takes the last -f).
        extra=("--spawn-per-s", str(args.spawn_rate), "-f", f"{LOCUSTFILE},{probe}", "--bench-out", str(out)),
    )
    sampler = CpuSampler()
    try:
        try:
            took = lab.start(timeout_s=READY_TIMEOUT_S)
            print(f"lab: {len(lab.procs)} processes ready in {took:.1f} s; {args.users} users for {args.duration:g} s",
                  flush=True)
            proc = lab.start_load(opts, run_dir)
        except ChaosError as e:
            raise BenchError(str(e)) from e
        pids = {name: p.popen.pid for name, p in lab.procs.items() if p.popen is not None}
        pids["locust"] = pids.pop(LOADGEN)
        code = wait_locust(proc.popen, args.duration + STOP_MARGIN_S, sampler, pids)
        if code not in (0, 1):  # 1: some request failed, which the table shows
            raise BenchError(f"Locust exited with code {code} against the lab: {proc.last_log_line()}; log: {proc.log_path}")
        dead = lab.dead()
        if dead:
            first = lab.procs[dead[0]]
            detail = first.last_log_line() or f"exit code {first.popen.returncode}"
            raise BenchError(f"lab process(es) died during the run: {', '.join(dead)} ({dead[0]}: {detail}); "
                             f"logs in {first.log_path.parent}")
    finally:
        lab.stop()
    result = read_probe(out, "lab", proc.log_path, sampler, args)
    check_csv(result, run_dir)
    return result


# ---- the ceiling run ---------------------------------------------------------------------


def start_quiet(cmd: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C reaches only us, and our finally stops it; dies with us anyway.
            start_new_session=True, preexec_fn=die_with_parent,
        )


def wait_bare_ready(server: subprocess.Popen, url: str, log_path: Path) -> None:
    problem = wait_http_ok(url, server, READY_TIMEOUT_S)
    if problem == "exited":
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
        raise BenchError(lines[-1] if lines else f"the bare server exited with code {server.returncode}")
    if problem == "timeout":
        raise BenchError(f"the bare server at {url} was not ready after {READY_TIMEOUT_S:.0f} s")


def run_ceiling(args: argparse.Namespace, folder: Path) -> Result:
    (port,) = free_ports(1)
    url = f"http://{HOST}:{port}"
    locustfile = folder / "bare_locustfile.py"
    locustfile.write_text(BARE_LOCUSTFILE_SOURCE, encoding="utf-8")
    out, run_dir = folder / "ceiling-probe.json", folder / "ceiling-run"
    run_dir.mkdir()
    server_log, locust_log = folder / "bare-server.log", folder / "ceiling-locust.log"
    procs: list[subprocess.Popen] = []
    sampler = CpuSampler()
    try:
        server = start_quiet([sys.executable, "-m", "bench.lab_throughput", "serve-bare", str(port)], server_log)
        procs.append(server)
        wait_bare_ready(server, url + "/", server_log)
        print(f"ceiling: bare aiohttp on {url}; {args.users} users, no wait, for {args.duration:g} s", flush=True)
        locust = start_quiet([
            sys.executable, "-m", "locust", "-f", str(locustfile), "--host", url,
            "--headless", "--only-summary", "-u", str(args.users), "-r", str(args.spawn_rate),
            "--run-time", f"{int(args.duration)}s", "--stop-timeout", "5",
            "--csv", str(run_dir / "locust"), "--bench-out", str(out),
        ], locust_log)
        procs.append(locust)
        code = wait_locust(locust, args.duration + STOP_MARGIN_S, sampler, {"locust": locust.pid, "bare aiohttp": server.pid})
        if code not in (0, 1):
            raise BenchError(f"Locust exited with code {code} against the bare server; log: {locust_log}")
        if server.poll() is not None:
            raise BenchError(f"the bare server died during the run; log: {server_log}")
    finally:
        stop_processes(list(reversed(procs)))
    result = read_probe(out, "ceiling", locust_log, sampler, args)
    check_csv(result, run_dir)
    return result


# ---- the report --------------------------------------------------------------------------


def ok_share(counts: Counter) -> float:
    total = sum(counts.values())
    return counts.get("ok", 0) / total if total else float("nan")


def report(lab: Result, ceiling: Result, args: argparse.Namespace) -> None:
    # Its version without importing it: importing Locust here would monkey-patch this process with
    # gevent, late, and gevent warns about that.
    locust_version = importlib.metadata.version("locust")
    cpus = len(os.sched_getaffinity(0))
    print()
    print(f"machine: {cpus} CPU(s) usable (nproc), {platform.machine()}, Python {platform.python_version()}, "
          f"Locust {locust_version}, everything on {HOST}")
    print(f"settings: {args.users} users in each run, {args.duration:g} s of load per run, {args.spawn_rate:g} users "
          "started per second; Locust in one process, FastHttpUser, in both runs")
    print(f"  lab:     architecture v1 as shipped, every service + Prometheus; the lab's locustfile, shape constant, "
          f"web share {WEB_SHARE:g}, users wait 1-4 s between journeys")
    print("  ceiling: one bare aiohttp process, GET / -> small JSON; users wait 0 s (constant(0))")
    print(f"figures: HTTP requests only (journeys left out), over the steady window ({args.settle_s} s after the last user "
          "started, to the stop); p50/p99 over every request in it; 5 s min..max: req/s in its slowest and "
          "fastest 5 s slice")
    print()
    print(f"{'run':<9} {'users':>5} {'window':>6} {'requests':>9} {'req/s':>7} {'5 s min..max':>14} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'failed':>7}  journeys ok")
    for r in (lab, ceiling):
        journeys = ", ".join(f"{c} {100 * ok_share(n):.1f}% of {sum(n.values()):,}" for c, n in sorted(r.journeys.items()))
        spread = f"{min(r.slices):,.0f}..{max(r.slices):,.0f}" if r.slices else "-"
        print(f"{r.name:<9} {r.users:>5} {r.window_s:>5.0f}s {r.requests:>9,} {r.rps:>7,.0f} {spread:>14} "
              f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {100 * r.failed / max(1, r.requests):>6.2f}%  {journeys or '-'}")
    print()
    notes: list[str] = []
    for r in (lab, ceiling):
        if not r.cpu:
            continue
        machine = r.cpu.pop(MACHINE, None)
        ours = sum(r.cpu.values())
        top = sorted(r.cpu.items(), key=lambda kv: -kv[1])
        line = ", ".join(f"{n} {c:.2f}" for n, c in top if c >= 0.01)
        if machine is not None:
            others = max(0.0, machine - ours)
            line += f"; everything else on the machine {others:.2f}"
            if others >= 0.2:
                notes.append(f"other processes used {others:.2f} core(s) during the {r.name} window: the machine was "
                             f"not quiet, so the {r.name} figures may be low; rerun when nothing else runs")
        print(f"CPU in the {r.name} window, in cores ({cpus} here): {ours:.2f} for the run "
              f"({1000 * ours / max(r.rps, 1e-9):.2f} ms per request) = {line}")
        if r.name == "lab" and ours >= 0.85 * cpus:
            notes.append(f"the lab run kept {ours:.2f} of {cpus} cores busy, no single process near a full core: the "
                         "lab is CPU-bound on the whole machine (more users add latency, not requests/s)")
        if r.cpu.get("locust", 0.0) >= 0.9:
            notes.append(f"Locust used {r.cpu['locust']:.2f} of a core in the {r.name} window: the load generator "
                         f"is (near) the bottleneck of the {r.name} run")
        elif r.locust_cpu_warning:
            notes.append(f"Locust warned that its CPU went above 90% at some point in the {r.name} run")
        notes += [f"{r.name}: {n}" for n in r.notes]
    bad = {c: ok_share(n) for c, n in lab.journeys.items() if ok_share(n) < 0.99}
    if bad:
        notes.append("journeys ok below 99% (" + ", ".join(f"{c} {100 * s:.1f}%" for c, s in bad.items())
                     + "): the lab is saturated at this load, and its req/s counts failed and retried requests")
    if lab.failed:
        notes.append(f"{lab.failed:,} of the lab's requests failed in the window")
    for n in notes:
        print(f"note: {n}")
    ratio = lab.rps / ceiling.rps if ceiling.rps else float("nan")
    print()
    if args.smoke:
        print(SMOKE_NOTE)
    print(f"lab: {lab.rps:,.0f} req/s at p99 {lab.p99_ms:,.0f} ms; ceiling: {ceiling.rps:,.0f} req/s at p99 "
          f"{ceiling.p99_ms:,.1f} ms; ratio lab / ceiling {ratio:.3f}")
    print(f"the lab sustains {ratio:.2f} of what Locust can drive against a bare aiohttp endpoint on this machine")


def bench(args: argparse.Namespace) -> int:
    from chaos.errors import ChaosError
    from chaos.lab.provision import find_prometheus

    ramp = args.users / args.spawn_rate
    if args.duration < ramp + args.settle_s + args.steady_s:
        raise BenchError(f"--duration {args.duration:g} leaves under {args.steady_s} s of steady load after {ramp:.0f} s "
                         f"of ramp and {args.settle_s} s to settle: raise --duration or --spawn-rate, or lower --users")
    try:
        prometheus = find_prometheus()
    except ChaosError as e:  # PROMETHEUS_BIN set to something that is not a program
        raise BenchError(f"{e}: fix it, or run `make setup`") from e
    if prometheus is None:
        raise BenchError("Prometheus not found: run `make setup` (or set PROMETHEUS_BIN)")
    work = Path(tempfile.mkdtemp(prefix="failwhale-bench-lab-"))
    print(f"benchmarking the whole lab, then a bare aiohttp endpoint: about {2 * args.duration + 20:.0f} s", flush=True)
    keep = args.keep
    try:
        probe = work / "bench_probe.py"
        probe.write_text(PROBE_SOURCE, encoding="utf-8")
        (work / "lab").mkdir()
        lab = run_lab(args, work / "lab", probe)
        print(f"lab: {lab.rps:,.0f} req/s, p99 {lab.p99_ms:,.0f} ms", flush=True)
        ceiling = run_ceiling(args, work)
        print(f"ceiling: {ceiling.rps:,.0f} req/s, p99 {ceiling.p99_ms:,.1f} ms", flush=True)
        report(lab, ceiling, args)
    except BenchError:
        keep = True  # the one-line error names a log in this folder
        raise
    finally:
        if args.keep:
            print(f"logs, Locust CSVs and probe data kept in {work}", file=sys.stderr)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _number(lo: float, hi: float, kind=int):
    def parse(text: str):
        n = kind(text)
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo:g} and {hi:g}")
        return n

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.lab_throughput",
        description=__doc__.split("\n\n")[0] + " Runs the whole lab (services + Prometheus) under "
        "the lab's Locust users, then the same Locust against one bare aiohttp endpoint, and prints "
        "requests/s and p99 for both and the ratio lab / ceiling. Needs Prometheus (`make setup`).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--users", type=_number(1, 5000), default=1000,
                   help="Locust users in each run; on 2 cores the lab's req/s has levelled off by 1000 users")
    p.add_argument("--duration", type=_number(1, 3600, float), default=50.0,
                   help="seconds of load in each run, ramp included (the steady window is what is left after "
                   f"users/spawn-rate + {SETTLE_S} s)")
    p.add_argument("--spawn-rate", type=_number(1, 1000, float), default=50.0,
                   help="users started per second in both runs (60%% are app users, who log in as they start; "
                   "the lab's auth allows 50 logins/s)")
    p.add_argument("--keep", action="store_true", help="keep the logs, Locust CSVs and probe data, and print where")
    p.add_argument("--smoke", action="store_true",
                   help=f"a run of about 20 s that shows the benchmark still works: --users {SMOKE['users']} "
                   f"--spawn-rate {SMOKE['spawn_rate']:g} --duration {SMOKE['duration']:g} (flags given still win), "
                   f"{SMOKE['settle_s']} s to settle")
    p.set_defaults(settle_s=SETTLE_S, steady_s=STEADY_S, min_window_s=MIN_WINDOW_S)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve-bare", help="(internal) serve the bare aiohttp endpoint until interrupted")
    s.add_argument("port", type=_number(1024, 65535))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, SMOKE)
    if args.command == "serve-bare":
        return serve_bare(args.port)
    return run_main(bench, args, 'every process it started is stopped')


if __name__ == "__main__":
    sys.exit(main())

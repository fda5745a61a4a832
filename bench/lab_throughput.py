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

For the lab run it also prints each service process's CPU per request it served (the requests
counted by the lab's own Prometheus; the process's background work, its scrapes included, is
in the figure). Set beside ``bench.metrics_overhead``'s CPU per request of one busy server, it
shows where the lab's CPU goes: a process that serves a trickle of requests spends several
times as much on each as one kept busy. On a 2-core virtual machine, one bare aiohttp process
used about 300 us of CPU a request at 160 requests/s and 100-130 us at 4,000 (its scheduler
run time, with the same system calls per request at both rates), and the lab's ten service
processes each serve 100-1,000 requests a second. The notifications process, for one, used 293 us
a request in a lab run at 800 users, against 90-97 us kept busy by ``bench.metrics_overhead``:
the other two thirds are what being woken for a request or two at a time costs on this machine.

Prints the machine, the settings, a table of both runs and the ratio lab / ceiling. It is a
benchmark, not a test: it exits 0 whatever it measures, and 2 with one line when it cannot
measure (Prometheus missing, a port in use, a process that does not start).

Users wait 1-4 s between journeys, so the lab's load grows with --users until the lab is
saturated, and a ratio measured below that point says how many users were asked for, not what
the lab can do. By default the benchmark therefore searches for the lab's capacity: lab runs at
1000 users, then 30% more each step, until a step's p99 passes --p99-bound (250 ms) or a
client's journeys fall under 99% ok; then it halves the gap until the last step within the bound
is within 8% of the first over it. The lab row is the step with the most req/s within the bound,
and the ceiling runs at that step's users. Each step is a fresh lab with 30 s of steady load after
its ramp, so a search takes 10-12 minutes on 2 cores (measured on a quiet 2-core machine: within
the bound at 1,690 users, over it at 1,816; lab 1,884 req/s at p99 140 ms with 1.92 cores busy
and 1.02 ms of CPU per request, Locust 0.26 ms of it; ceiling 7,046 req/s; ratio 0.267).
``--users N`` measures one user count instead.

Both Locust runs keep their connections alive past 1,024 open sockets (loadtest/keepalive.py):
without that, geventhttpclient reconnected on nearly every request once a Locust process held
more than about 250 users, and both figures measured connection setup instead.

Figures swing by 10-20% between runs on this kind of virtual machine: compare variants within
one run, or by CPU per request. The ceiling also depends on the users: a busy Locust process
spends more per request the more users it runs.

Run it from the repository root::

    python -m bench.lab_throughput                    # the capacity search: 10-12 minutes
    python -m bench.lab_throughput --users 1700 --duration 90 --keep
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
# The search for the lab's capacity: the most users whose steady window keeps p99 within the
# bound with journeys ok, found by growing the users by SEARCH_STEP until a step is over the
# bound, then halving the gap until it is within SEARCH_RESOLUTION of the last step within it.
P99_BOUND_MS = 250.0
MIN_JOURNEYS_OK = 0.99
SEARCH_START_USERS = 1000
SEARCH_STEP = 1.3
SEARCH_RESOLUTION = 0.08
SEARCH_MAX_STEPS = 10
SEARCH_MAX_USERS = 5000
SEARCH_STEADY_S = 30  # steady seconds each search step keeps after its ramp
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

BARE_LOCUSTFILE_SOURCE = (
    PROBE_SOURCE
    + """
from locust import FastHttpUser, constant, events, task
from loadtest import keepalive

# As the lab's locustfile does: without it, past 1,024 sockets the client reconnects per request.
events.init.add_listener(lambda **_kw: keepalive.install())


class BareUser(FastHttpUser):
    wait_time = constant(0)  # no think time: the ceiling is what Locust can send

    @task
    def get(self):
        self.client.get("/", name="bare GET /")
"""
)


# --------------------------------------------------------------------------- the bare endpoint


def serve_bare(port: int) -> int:
    from aiohttp import web

    body = {"status": "ok", "service": "bare", "items": [1, 2, 3]}

    async def handle(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/", handle)
    return serve(app, HOST, port, "the bare server")


# --------------------------------------------------------------------------- the search


def next_users(tried: dict[int, bool]) -> int | None:
    """The next user count to try, given each count tried so far and whether it was within the
    bound; None when the search is done (bracketed finely enough, out of steps, or out of range).
    """
    if not tried or len(tried) >= SEARCH_MAX_STEPS:
        return None if tried else SEARCH_START_USERS
    over = [u for u, ok in tried.items() if not ok]
    if not over:
        top = max(tried)
        return None if top >= SEARCH_MAX_USERS else min(SEARCH_MAX_USERS, round(top * SEARCH_STEP))
    hi = min(over)
    within = [u for u, ok in tried.items() if ok and u < hi]
    if not within:
        low = round(hi / SEARCH_STEP)
        return None if low < 50 or low in tried else low
    lo = max(within)
    if hi - lo <= SEARCH_RESOLUTION * lo:
        return None
    mid = (lo + hi) // 2
    return None if mid in tried else mid


def within_bound(r: Result, bound_ms: float) -> bool:
    """The step's p99 is within the bound and every client's journeys are at least 99% ok."""
    return r.p99_ms <= bound_ms and all(ok_share(n) >= MIN_JOURNEYS_OK for n in r.journeys.values())


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
    # Lab runs: service process -> requests/s it served over the window (its own request counter, as
    # the lab's Prometheus scraped it), so its CPU can be put per request it served.
    served: dict[str, float] = field(default_factory=dict)
    window_end: float = 0.0  # Unix time the window ends
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
        name,
        int(marks.get("users", 0)),
        window,
        requests,
        failed,
        slices,
        percentile(hist, 0.50),
        percentile(hist, 0.99),
        journeys,
        cpu=sampler.shares(first, last + 1),
        window_end=float(last + 1),
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
    """One lab run at ``args.users`` for ``args.duration``, on a fresh lab in ``folder``."""
    from chaos.errors import ChaosError
    from chaos.lab.supervisor import LOADGEN, LOCUSTFILE, PROMETHEUS, Lab, LoadOptions
    from configfiles.errors import ConfigError
    from services.architecture import load_architecture
    from services.config import load_lab_config

    folder.mkdir(parents=True, exist_ok=True)

    try:
        cfg = load_lab_config(free_port_lab_config(folder, ARCHITECTURE))
        lab = Lab(cfg, load_architecture(cfg.architecture_path))
    except ConfigError as e:
        raise BenchError(str(e)) from e
    run_dir = folder / "run"
    out = folder / "lab-probe.json"
    opts = LoadOptions(
        headless=True,
        shape="constant",
        peak_users=args.users,
        web_share=WEB_SHARE,
        duration_s=args.duration,
        # The lab's locustfile and, beside it, the probe (Locust takes the last -f).
        extra=("--spawn-per-s", str(args.spawn_rate), "-f", f"{LOCUSTFILE},{probe}", "--bench-out", str(out)),
    )
    sampler = CpuSampler()
    try:
        try:
            took = lab.start(timeout_s=READY_TIMEOUT_S)
            print(
                f"lab: {len(lab.procs)} processes ready in {took:.1f} s; {args.users} users for {args.duration:g} s",
                flush=True,
            )
            proc = lab.start_load(opts, run_dir)
        except ChaosError as e:
            raise BenchError(str(e)) from e
        pids = {name: p.popen.pid for name, p in lab.procs.items() if p.popen is not None}
        pids["locust"] = pids.pop(LOADGEN)
        code = wait_locust(proc.popen, args.duration + STOP_MARGIN_S, sampler, pids)
        if code not in (0, 1):  # 1: some request failed, which the table shows
            raise BenchError(
                f"Locust exited with code {code} against the lab: {proc.last_log_line()}; log: {proc.log_path}"
            )
        dead = lab.dead()
        if dead:
            first = lab.procs[dead[0]]
            detail = first.last_log_line() or f"exit code {first.popen.returncode}"
            raise BenchError(
                f"lab process(es) died during the run: {', '.join(dead)} ({dead[0]}: {detail}); "
                f"logs in {first.log_path.parent}"
            )
        # Read before the lab stops: the counts come from the lab's own Prometheus.
        result = read_probe(out, "lab", proc.log_path, sampler, args)
        result.served = served_per_second(cfg.url(PROMETHEUS), result)
    finally:
        lab.stop()
    check_csv(result, run_dir)
    return result


def served_per_second(prometheus_url: str, r: Result) -> dict[str, float]:
    """Requests/s each service process served over ``r``'s window, by the lab's Prometheus (every
    route, its scrapes included); empty, with a note on ``r``, when Prometheus cannot say."""
    from chaos.errors import ChaosError
    from chaos.promql import query

    window = int(r.window_s)
    promql = f"sum by (replica) (increase(failwhale_http_requests_total[{window}s]))"
    try:
        rows = query(prometheus_url, promql, at=r.window_end)
    except ChaosError as e:
        r.notes.append(f"could not read how many requests each process served: {e}")
        return {}
    return {row["metric"]["replica"]: float(row["value"][1]) / window for row in rows if "replica" in row["metric"]}


# ---- the ceiling run ---------------------------------------------------------------------


def start_quiet(cmd: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C reaches only us, and our finally stops it; dies with us anyway.
            start_new_session=True,
            preexec_fn=die_with_parent,
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
        locust = start_quiet(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--host",
                url,
                "--headless",
                "--only-summary",
                "-u",
                str(args.users),
                "-r",
                str(args.spawn_rate),
                "--run-time",
                f"{int(args.duration)}s",
                "--stop-timeout",
                "5",
                "--csv",
                str(run_dir / "locust"),
                "--bench-out",
                str(out),
            ],
            locust_log,
        )
        procs.append(locust)
        code = wait_locust(
            locust, args.duration + STOP_MARGIN_S, sampler, {"locust": locust.pid, "bare aiohttp": server.pid}
        )
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


def report(lab: Result, ceiling: Result, args: argparse.Namespace, steps: list[Result] = ()) -> None:
    # Its version without importing it: importing Locust here would monkey-patch this process with
    # gevent, late, and gevent warns about that.
    locust_version = importlib.metadata.version("locust")
    cpus = len(os.sched_getaffinity(0))
    print()
    print(
        f"machine: {cpus} CPU(s) usable (nproc), {platform.machine()}, Python {platform.python_version()}, "
        f"Locust {locust_version}, everything on {HOST}"
    )
    print(
        f"settings: {args.users} users in each run, {args.duration:g} s of load per run, {args.spawn_rate:g} users "
        "started per second; Locust in one process, FastHttpUser, in both runs"
    )
    print(
        f"  lab:     architecture v1 as shipped, every service + Prometheus; the lab's locustfile, shape constant, "
        f"web share {WEB_SHARE:g}, users wait 1-4 s between journeys"
    )
    print("  ceiling: one bare aiohttp process, GET / -> small JSON; users wait 0 s (constant(0))")
    if steps:
        print(
            f"search: lab runs at growing user counts; the lab row below is the one with the most req/s at p99 "
            f"<= {args.p99_bound:g} ms and journeys >= {100 * MIN_JOURNEYS_OK:g}% ok; the ceiling ran at its users"
        )
        for n, r in enumerate(steps, 1):
            verdict = "within" if within_bound(r, args.p99_bound) else "over"
            print(f"  step {n}: {r.users:>5} users  {describe(r)}  {verdict}")
    print(
        f"figures: HTTP requests only (journeys left out), over the steady window ({args.settle_s} s after the last user "
        "started, to the stop); p50/p99 over every request in it; 5 s min..max: req/s in its slowest and "
        "fastest 5 s slice"
    )
    print()
    print(
        f"{'run':<9} {'users':>5} {'window':>6} {'requests':>9} {'req/s':>7} {'5 s min..max':>14} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'failed':>7}  journeys ok"
    )
    for r in (lab, ceiling):
        journeys = ", ".join(
            f"{c} {100 * ok_share(n):.1f}% of {sum(n.values()):,}" for c, n in sorted(r.journeys.items())
        )
        spread = f"{min(r.slices):,.0f}..{max(r.slices):,.0f}" if r.slices else "-"
        print(
            f"{r.name:<9} {r.users:>5} {r.window_s:>5.0f}s {r.requests:>9,} {r.rps:>7,.0f} {spread:>14} "
            f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {100 * r.failed / max(1, r.requests):>6.2f}%  {journeys or '-'}"
        )
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
                notes.append(
                    f"other processes used {others:.2f} core(s) during the {r.name} window: the machine was "
                    f"not quiet, so the {r.name} figures may be low; rerun when nothing else runs"
                )
        print(
            f"CPU in the {r.name} window, in cores ({cpus} here): {ours:.2f} for the run "
            f"({1000 * ours / max(r.rps, 1e-9):.2f} ms per request) = {line}"
        )
        if r.served:
            per_request = sorted(
                ((n, 1e6 * r.cpu[n] / rps) for n, rps in r.served.items() if n in r.cpu and rps >= 1),
                key=lambda kv: -kv[1],
            )
            print(
                f"CPU per request each process served in the {r.name} window, in us: "
                + ", ".join(f"{n} {us:,.0f} ({r.served[n]:,.0f}/s)" for n, us in per_request)
            )
        if r.name == "lab" and ours >= 0.85 * cpus:
            notes.append(
                f"the lab run kept {ours:.2f} of {cpus} cores busy, no single process near a full core: the "
                "lab is CPU-bound on the whole machine (more users add latency, not requests/s)"
            )
        if r.cpu.get("locust", 0.0) >= 0.9:
            notes.append(
                f"Locust used {r.cpu['locust']:.2f} of a core in the {r.name} window: the load generator "
                f"is (near) the bottleneck of the {r.name} run"
            )
        elif r.locust_cpu_warning:
            notes.append(f"Locust warned that its CPU went above 90% at some point in the {r.name} run")
        notes += [f"{r.name}: {n}" for n in r.notes]
    bad = {c: ok_share(n) for c, n in lab.journeys.items() if ok_share(n) < 0.99}
    if bad:
        notes.append(
            "journeys ok below 99% ("
            + ", ".join(f"{c} {100 * s:.1f}%" for c, s in bad.items())
            + "): the lab is saturated at this load, and its req/s counts failed and retried requests"
        )
    if lab.failed:
        notes.append(f"{lab.failed:,} of the lab's requests failed in the window")
    for n in notes:
        print(f"note: {n}")
    ratio = lab.rps / ceiling.rps if ceiling.rps else float("nan")
    print()
    if args.smoke:
        print(SMOKE_NOTE)
    if steps and not within_bound(lab, args.p99_bound):
        print(f"no step kept p99 within {args.p99_bound:g} ms with journeys ok: the lowest step is shown")
    print(
        f"lab: {lab.rps:,.0f} req/s at p99 {lab.p99_ms:,.0f} ms; ceiling: {ceiling.rps:,.0f} req/s at p99 "
        f"{ceiling.p99_ms:,.1f} ms; ratio lab / ceiling {ratio:.3f}"
    )
    print(f"the lab sustains {ratio:.2f} of what Locust can drive against a bare aiohttp endpoint on this machine")


def step_args(args: argparse.Namespace, users: int) -> argparse.Namespace:
    """``args`` for one run at ``users``: a search step keeps SEARCH_STEADY_S of steady load after its ramp."""
    duration = args.duration
    if args.users is None:
        duration = max(duration, math.ceil(users / args.spawn_rate) + args.settle_s + SEARCH_STEADY_S)
    return argparse.Namespace(**{**vars(args), "users": users, "duration": float(duration)})


def describe(r: Result) -> str:
    journeys = ", ".join(f"{c} {100 * ok_share(n):.1f}%" for c, n in sorted(r.journeys.items()))
    return f"{r.rps:,.0f} req/s, p99 {r.p99_ms:,.0f} ms, journeys ok {journeys or '-'}"


def search(args: argparse.Namespace, work: Path, probe: Path) -> tuple[Result, list[Result]]:
    """Lab runs at growing user counts (``next_users``); the best run within the bound, and all of them."""
    tried: dict[int, bool] = {}
    runs: list[Result] = []
    while (users := next_users(tried)) is not None:
        result = run_lab(step_args(args, users), work / f"lab-{users}", probe)
        tried[users] = within_bound(result, args.p99_bound)
        runs.append(result)
        verdict = "within" if tried[users] else "over"
        print(f"step {len(runs)}: {users} users: {describe(result)}: {verdict} the bound", flush=True)
    within = [r for r in runs if tried[r.users]]
    best = max(within, key=lambda r: r.rps) if within else min(runs, key=lambda r: r.users)
    return best, runs


def bench(args: argparse.Namespace) -> int:
    from chaos.errors import ChaosError
    from chaos.lab.provision import find_prometheus

    if args.users is not None:
        ramp = args.users / args.spawn_rate
        if args.duration < ramp + args.settle_s + args.steady_s:
            raise BenchError(
                f"--duration {args.duration:g} leaves under {args.steady_s} s of steady load after "
                f"{ramp:.0f} s of ramp and {args.settle_s} s to settle: raise --duration or --spawn-rate, "
                "or lower --users"
            )
    try:
        prometheus = find_prometheus()
    except ChaosError as e:  # PROMETHEUS_BIN set to something that is not a program
        raise BenchError(f"{e}: fix it, or run `make setup`") from e
    if prometheus is None:
        raise BenchError("Prometheus not found: run `make setup` (or set PROMETHEUS_BIN)")
    work = Path(tempfile.mkdtemp(prefix="failwhale-bench-lab-"))
    if args.users is None:
        print(
            f"searching for the most users the lab serves at p99 <= {args.p99_bound:g} ms (a fresh lab per step, "
            f"about 80 s each, up to {SEARCH_MAX_STEPS} steps), then a bare aiohttp endpoint at that many users",
            flush=True,
        )
    else:
        print(
            f"benchmarking the whole lab, then a bare aiohttp endpoint: about {2 * args.duration + 20:.0f} s",
            flush=True,
        )
    keep = args.keep
    try:
        probe = work / "bench_probe.py"
        probe.write_text(PROBE_SOURCE, encoding="utf-8")
        if args.users is None:
            lab, steps = search(args, work, probe)
        else:
            lab, steps = run_lab(args, work / "lab", probe), []
            print(f"lab: {describe(lab)}", flush=True)
        at = step_args(args, lab.users if args.users is None else args.users)
        ceiling = run_ceiling(at, work)
        print(f"ceiling: {ceiling.rps:,.0f} req/s, p99 {ceiling.p99_ms:,.1f} ms", flush=True)
        report(lab, ceiling, at, steps)
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
    p.add_argument(
        "--users",
        type=_number(1, 5000),
        default=None,
        help="Locust users in each run (default: search for the most users the lab serves within "
        "--p99-bound, and run the ceiling at that many)",
    )
    p.add_argument(
        "--p99-bound",
        type=_number(1, 60000, float),
        default=P99_BOUND_MS,
        help="the search's latency bound, ms: a step is within it when its p99 is at most this and every "
        f"client's journeys are at least {100 * MIN_JOURNEYS_OK:g}%% ok",
    )
    p.add_argument(
        "--duration",
        type=_number(1, 3600, float),
        default=50.0,
        help="seconds of load in each run, ramp included (the steady window is what is left after "
        f"users/spawn-rate + {SETTLE_S} s)",
    )
    p.add_argument(
        "--spawn-rate",
        type=_number(1, 1000, float),
        default=50.0,
        help="users started per second in both runs (60%% are app users, who log in as they start; "
        "the lab's auth allows 50 logins/s)",
    )
    p.add_argument("--keep", action="store_true", help="keep the logs, Locust CSVs and probe data, and print where")
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"a run of about 20 s that shows the benchmark still works: --users {SMOKE['users']} "
        f"--spawn-rate {SMOKE['spawn_rate']:g} --duration {SMOKE['duration']:g} (flags given still win), "
        f"{SMOKE['settle_s']} s to settle",
    )
    p.set_defaults(settle_s=SETTLE_S, steady_s=STEADY_S, min_window_s=MIN_WINDOW_S)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve-bare", help="(internal) serve the bare aiohttp endpoint until interrupted")
    s.add_argument("port", type=_number(1024, 65535))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, SMOKE)
    if args.command == "serve-bare":
        return serve_bare(args.port)
    return run_main(bench, args, "every process it started is stopped")


if __name__ == "__main__":
    sys.exit(main())

"""How much throughput does failwhale's metrics middleware cost? One run, four variants.

Runs the notifications service four ways, each as its own server process on 127.0.0.1:

* ``bare``      -- the service with ``instrument=False, chaos=False``: the service middleware
                   without its metrics and fault steps (the Host check and JSON errors remain);
* ``naive``     -- ``bare`` plus a prometheus-client middleware written the way most tutorials
                   write it (``.labels(...)`` on every request, ``with histogram.time()``);
* ``chaos``     -- ``bare`` plus the fault step with no fault active (target: >= 0.98);
* ``failwhale`` -- the service exactly as the lab builds it (``services.registry.build_app``):
                   metrics and fault steps both.

``wrk`` loads one server at a time. Every round starts a fresh server process per variant and
runs every variant back to back (each round starting with the next one): two processes of the
same code can differ by a few percent for their whole life, and the machine has busy moments, so
a variant's ratio to bare is taken round by round and its figure is the median of those ratios
(their middle half is printed beside it, to show how far to trust it). Prints requests/s, p99
latency, the server's CPU time per request and the ratios to bare, then whether failwhale keeps
at least 0.95 of bare aiohttp (its fault middleware included, as the lab runs it). It is a
benchmark, not a test: it exits 0 whatever it measures, and 2 only when it cannot measure (wrk
missing, a port in use, a server that does not start).

Run it from the repository root::

    python -m bench.metrics_overhead                  # 15 rounds of 3 s per variant, about 5 min
    python -m bench.metrics_overhead --rounds 30      # a tighter median
    python -m bench.metrics_overhead --smoke          # about 15 s: does it still run?
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import SMOKE_NOTE, BenchError, cpu_seconds, parse_args, run_main, stop_processes, wait_http_ok
from chaos.lab.ports import free_ports
from chaos.lab.supervisor import die_with_parent, try_listen
from services.common.app import serve

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
INSTANCE = "notifications"
PATH = "/internal/notifications"
# The headers a lab hop to notifications carries (services.common.upstream forwards them from the
# caller), an app user's here; a real user, so the handler builds a feed, not a guest's empty one.
HEADERS = {
    "X-User": "user0042",
    "X-Client": "app",
    "User-Agent": "TwitterAndroid/9.70.0-release.0 (29700000-r-0) Pixel 7/13 (Google;panther;google;panther;0;;1;2016)",
    "Accept": "application/json",
}
VARIANTS = ("bare", "naive", "chaos", "failwhale")
CHAOS_TARGET = 0.98
# Issue 14: the metrics middleware keeps >= 0.95 of bare aiohttp. Judged on the failwhale variant,
# idle fault middleware included, because that is what the lab runs.
METRICS_TARGET = 0.95
WARMUP_SECONDS = 1
# Enough to go through every step once; the figures of so short a run mean nothing.
SMOKE = {"rounds": 1, "seconds": 2, "warmup_s": 1}
READY_TIMEOUT_S = 20.0


# --------------------------------------------------------------------------- the servers


def _naive_middleware():
    """A tutorial-style prometheus middleware, built on first use so the driver never imports it."""
    from aiohttp import web
    from prometheus_client import Counter, Gauge, Histogram

    # Global metrics on the default registry with default buckets, as tutorials declare them.
    requests_total = Counter("http_requests_total", "HTTP requests", ["method", "path", "status"])
    latency = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "path"])
    # failwhale also keeps an in-flight gauge, so the naive variant does the same kind of work.
    in_progress = Gauge("http_requests_in_progress", "HTTP requests in progress", ["method", "path"])

    @web.middleware
    async def naive_metrics(request, handler):
        # .labels() on every request, as tutorials do: that lookup is the cost under study.
        with in_progress.labels(request.method, request.path).track_inprogress():
            with latency.labels(request.method, request.path).time():
                response = await handler(request)
        requests_total.labels(request.method, request.path, str(response.status)).inc()
        return response

    return naive_metrics


def build_variant(variant: str, data_dir: Path, port: int):
    """The notifications app for ``variant``, from the lab's own config and architecture, as
    served on ``port`` (its lab config says so: a service answers only requests for its own address)."""
    from aiohttp import web

    from services.architecture import ArchitectureState, load_architecture
    from services.common.app import ServiceContext, create_service_app
    from services.config import load_lab_config
    from services.notifications.app import notifications
    from services.registry import build_app

    # An empty data dir: no control token, and nothing shared with a lab that may be running.
    lab = load_lab_config()
    lab = lab.model_copy(update={"data_dir": data_dir, "ports": {**lab.ports, INSTANCE: port}})
    arch = load_architecture(lab.architecture_path)
    if variant == "failwhale":
        return build_app(INSTANCE, lab, arch)
    ctx = ServiceContext(
        instance=INSTANCE,
        kind=arch.instance_kinds()[INSTANCE],
        lab=lab,
        architecture=ArchitectureState(arch),
    )
    # Same routes and error middleware as the real service; only the middlewares under test differ.
    app = create_service_app(ctx, [web.get(PATH, notifications)], instrument=False, chaos=variant == "chaos")
    if variant == "naive":
        # Outermost, where failwhale's own metrics middleware sits; allowed until the app starts.
        app.middlewares.insert(0, _naive_middleware())
    return app


def serve_variant(variant: str, port: int) -> int:
    """The ``serve`` subcommand: one variant's server until interrupted; 2 if it cannot listen."""
    with tempfile.TemporaryDirectory(prefix="failwhale-bench-") as tmp:
        return serve(build_variant(variant, Path(tmp), port), HOST, port, f"the {variant} server")


# --------------------------------------------------------------------------- the driver


@dataclass
class Server:
    variant: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def last_error(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        return lines[-1] if lines else f"exited with code {self.proc.returncode}"


@dataclass
class Sample:
    rps: float
    p99_ms: float
    requests: int
    errors: str = ""
    # The server's own CPU time per request. Other processes on the machine lower req/s by taking
    # the server's CPU away; they move this much less (a slower host still moves both).
    cpu_us: float = 0.0


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {v: [] for v in VARIANTS})


def server_cpu(server: Server) -> float:
    """CPU seconds the server has used (single-threaded asyncio: one thread to count)."""
    used = cpu_seconds(server.proc.pid)
    if used is None:
        raise BenchError(server.last_error())
    return used


def check_port_free(port: int) -> None:
    try:
        try_listen(HOST, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise BenchError(f"port {port} on {HOST} is in use") from e
        raise BenchError(f"cannot use port {port} on {HOST}: {e.strerror or e}") from e


def cpu_plan() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for the servers and for wrk: apart when there are two, so they do not steal each other's core."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def start_server(variant: str, port: int, log_dir: Path, cpus: set[int] | None) -> Server:
    log_path = log_dir / f"{variant}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.metrics_overhead", "serve", variant, str(port)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C reaches only us, and our finally stops the servers in order.
            # Should we be killed outright, the servers die with us rather than hold their ports.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, cpus)
    return Server(variant, port, proc, log_path)


def wait_ready(server: Server) -> None:
    problem = wait_http_ok(server.url + "/readyz", server.proc, READY_TIMEOUT_S)
    if problem == "exited":
        raise BenchError(server.last_error())
    if problem == "timeout":
        raise BenchError(f"{server.variant} server on port {server.port} was not ready after {READY_TIMEOUT_S:.0f} s")
    # Make sure wrk will measure the real handler, not a cheap error or the guest's empty feed.
    req = urllib.request.Request(server.url + PATH, headers=HEADERS)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise BenchError(f"{server.variant} server did not answer {PATH}: {e}") from e
    if status != 200 or not _has_items(body):
        raise BenchError(f"{server.variant} server answered {PATH} with {status}: {body[:80]!r}")


def _has_items(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and bool(data.get("notifications"))


_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_P99 = re.compile(r"^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_ERRORS = re.compile(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> Sample:
    rps, p99, n = _RPS.search(out), _P99.search(out), _REQUESTS.search(out)
    if rps is None or p99 is None or n is None:
        raise BenchError(
            "could not read Requests/sec and the 99% latency from wrk's output: " + " ".join(out.split())[:200]
        )
    errors = "; ".join(m.strip() for m in _ERRORS.findall(out))
    return Sample(float(rps.group(1)), float(p99.group(1)) * _UNIT_MS[p99.group(2)], int(n.group(1)), errors)


def run_wrk(wrk: str, server: Server, seconds: int, connections: int, cpus: set[int] | None) -> Sample:
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        *(arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")),
        server.url + PATH,
    ]
    if server.proc.poll() is not None:
        raise BenchError(f"{server.variant} server died: {server.last_error()}")
    cpu_before = server_cpu(server)
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None,
        )
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"wrk did not finish within {seconds + 30} s against {server.variant}") from e
    if done.returncode != 0:
        raise BenchError(f"wrk failed against {server.variant}: {(done.stderr or done.stdout).strip()[:200]}")
    cpu = server_cpu(server) - cpu_before
    sample = parse_wrk(done.stdout)
    sample.cpu_us = cpu / max(1, sample.requests) * 1e6
    return sample


def rotated(round_no: int) -> Iterator[str]:
    # Start each round with the next variant, so none always runs first (or right after another).
    for i in range(len(VARIANTS)):
        yield VARIANTS[(round_no + i) % len(VARIANTS)]


def paired(samples: dict[str, list[Sample]], variant: str) -> list[float]:
    """``variant``'s req/s over bare's, round by round: both ran back to back on fresh processes,
    so a busy moment of the machine or a lucky process moves one ratio, not the median of them."""
    return sorted(v.rps / b.rps for v, b in zip(samples[variant], samples["bare"], strict=True))


def middle_half(ratios: list[float]) -> str:
    """The interquartile range of ``ratios``: where the middle half of the rounds landed."""
    if len(ratios) == 1:  # one round: its ratio is the whole range (quantiles needs two)
        return f"{ratios[0]:.3f} .. {ratios[0]:.3f}"
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return f"{q1:.3f} .. {q3:.3f}"


def report(results: Results, args: argparse.Namespace) -> None:
    samples = results.samples
    med = {v: statistics.median(s.rps for s in samples[v]) for v in VARIANTS}
    p99 = {v: statistics.median(s.p99_ms for s in samples[v]) for v in VARIANTS}
    cpu = {v: statistics.median(s.cpu_us for s in samples[v]) for v in VARIANTS}
    rounds = {v: paired(samples, v) for v in VARIANTS}
    ratio = {v: statistics.median(rounds[v]) for v in VARIANTS}
    print()
    print(
        f"notifications GET {PATH} (an app user's lab hop: {', '.join(HEADERS)}), "
        f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} round(s) of fresh servers"
    )
    print()
    print(
        f"{'variant':<10} {'req/s':>8} {'min .. max':>17} {'p99 ms':>7} {'vs bare':>8} {'middle half':>15}"
        f" {'server CPU us/req':>18} {'vs bare':>8}"
    )
    for v in VARIANTS:
        lo, hi = min(s.rps for s in samples[v]), max(s.rps for s in samples[v])
        print(
            f"{v:<10} {med[v]:>8,.0f} {f'{lo:,.0f} .. {hi:,.0f}':>17} {p99[v]:>7.2f} {ratio[v]:>8.3f}"
            f" {middle_half(rounds[v]):>15} {cpu[v]:>18.1f} {cpu['bare'] / cpu[v]:>8.3f}"
        )
    print(
        "\nreq/s, p99 and CPU are medians over the rounds; 'vs bare' is the median of each round's ratio to bare,"
        " 'middle half' where the middle half of those ratios fell"
    )
    errors = [f"{v}: {s.errors}" for v in VARIANTS for s in samples[v] if s.errors]
    if errors:
        print("\nwrk reported errors (those figures are suspect):\n  " + "\n  ".join(errors))
    # A saturated single-threaded server serves 1/(CPU per request) req/s, so the CPU ratio is the
    # same quantity as the req/s ratio, minus what other load on the machine does to wall time.
    noisy = [v for v in VARIANTS if max(s.rps for s in samples[v]) > 1.15 * min(s.rps for s in samples[v])]
    if noisy:
        print(
            f"\nnote: req/s varied by more than 15% between rounds ({', '.join(noisy)}): the machine was busy"
            " or the processes unlike; the medians need more --rounds to settle"
        )
    verdict = "OK" if ratio["failwhale"] >= METRICS_TARGET else "BELOW TARGET"
    print()
    if args.smoke:
        print(SMOKE_NOTE)
    print(
        f"by server CPU per request: naive keeps {cpu['bare'] / cpu['naive']:.2f}, "
        f"failwhale keeps {cpu['bare'] / cpu['failwhale']:.2f}"
    )
    print(f"naive prometheus-client middleware keeps {ratio['naive']:.2f} of bare aiohttp")
    print(
        f"failwhale metrics keep {ratio['failwhale']:.3f} of bare aiohttp (target >= {METRICS_TARGET:.2f}): {verdict}"
    )
    chaos_cpu = cpu["bare"] / cpu["chaos"]
    print(
        f"the idle fault middleware keeps {ratio['chaos']:.3f} of bare aiohttp, {chaos_cpu:.3f} by CPU "
        f"(target >= {CHAOS_TARGET:.2f}): {'OK' if min(ratio['chaos'], chaos_cpu) >= CHAOS_TARGET else 'BELOW TARGET'}"
    )


def play_round(
    round_no: int,
    wrk: str,
    ports: dict[str, int],
    log_dir: Path,
    cpus: tuple[set[int] | None, set[int] | None],
    args: argparse.Namespace,
) -> dict[str, Sample]:
    """One round: a fresh server per variant, warmed up, then each measured once, in rotated order.

    Fresh processes every round, as pyperf runs a benchmark in many worker processes: two
    processes of the same code can differ by a few percent for their whole life (where memory
    landed, the hash seed), so one process per variant would carry its luck into every round.
    """
    server_cpus, wrk_cpus = cpus
    servers: list[Server] = []
    try:
        for v in VARIANTS:
            servers.append(start_server(v, ports[v], log_dir, server_cpus))
        for s in servers:
            wait_ready(s)
        by_variant = {s.variant: s for s in servers}
        # Warm-up: first connections, imports on first use, prometheus children, CPU clocks.
        for s in servers:
            run_wrk(wrk, s, args.warmup_s, args.connections, wrk_cpus)
        return {v: run_wrk(wrk, by_variant[v], args.seconds, args.connections, wrk_cpus) for v in rotated(round_no)}
    finally:
        stop_processes([s.proc for s in servers])


def bench(args: argparse.Namespace) -> int:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk not found: run `make bench`, which installs it")
    if args.port_base:
        ports = {v: args.port_base + i for i, v in enumerate(VARIANTS)}
        for p in ports.values():
            check_port_free(p)
    else:
        ports = dict(zip(VARIANTS, free_ports(len(VARIANTS)), strict=True))
    server_cpus, wrk_cpus = cpu_plan()
    total = len(VARIANTS) * args.rounds * (args.warmup_s + args.seconds)
    print(
        f"benchmarking {', '.join(VARIANTS)}: about {total} s of load"
        + (f"; servers on CPU {sorted(server_cpus)}, wrk on CPU {sorted(wrk_cpus)}" if server_cpus else ""),
        flush=True,
    )

    results = Results()
    with tempfile.TemporaryDirectory(prefix="failwhale-bench-logs-") as log_dir:
        for r in range(args.rounds):
            samples = play_round(r, wrk, ports, Path(log_dir), (server_cpus, wrk_cpus), args)
            for v, sample in samples.items():
                results.samples[v].append(sample)
            line = ", ".join(f"{v} {s.rps:,.0f} req/s {s.cpu_us:.0f} us/req" for v, s in samples.items())
            print(f"round {r + 1}/{args.rounds}: {line}", flush=True)
    report(results, args)
    return 0


def _positive(limit: int):
    def parse(text: str) -> int:
        n = int(text)
        if not 1 <= n <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
        return n

    return parse


def _port(text: str) -> int:
    n = int(text)
    if not 1024 <= n <= 65535:
        raise argparse.ArgumentTypeError("must be between 1024 and 65535")
    return n


def _port_base(text: str) -> int:
    n = int(text)
    last = 65535 - (len(VARIANTS) - 1)  # one port per variant, from this one up
    if n and not 1024 <= n <= last:
        raise argparse.ArgumentTypeError(f"must be 0 or between 1024 and {last}")
    return n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.metrics_overhead",
        description=__doc__.split("\n\n")[0] + " Measures requests/s of the notifications service "
        "bare, with a naive prometheus-client middleware, and with failwhale's metrics middleware, "
        "and prints each one's ratio to bare. Needs wrk (`make bench` installs it).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seconds", type=_positive(600), default=3, help="length of each wrk run")
    p.add_argument(
        "--rounds",
        type=_positive(100),
        default=15,
        help="rounds, each on fresh servers; a variant's figure is the median of its per-round ratios to bare",
    )
    p.add_argument("--connections", type=_positive(10000), default=32, help="wrk's open connections (-c)")
    p.add_argument(
        "--port-base",
        type=_port_base,
        default=0,
        metavar="PORT",
        help=f"listen on PORT .. PORT+{len(VARIANTS) - 1} on 127.0.0.1; 0 = free ports the OS picks",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"a run of about 15 s that shows the benchmark still works: --rounds {SMOKE['rounds']} "
        f"--seconds {SMOKE['seconds']} (flags given still win), {SMOKE['warmup_s']} s of warm-up",
    )
    p.set_defaults(warmup_s=WARMUP_SECONDS)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="(internal) run one variant's server until interrupted")
    s.add_argument("variant", choices=VARIANTS)
    s.add_argument("port", type=_port)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse_args(parser(), argv, SMOKE)
    if args.command == "serve":
        return serve_variant(args.variant, args.port)
    return run_main(bench, args, "servers stopped")


if __name__ == "__main__":
    sys.exit(main())

"""The ``failwhale`` command: set up, start and (later) break the lab.

Every error a user can cause is printed as one ``error: ...`` line with exit code 2; a lab
that fails to start exits 1. Nothing here prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chaos import records
from chaos.errors import BadInput, ChaosError
from chaos.lab import provision
from chaos.lab.supervisor import DASHBOARD, LOADGEN, PROMETHEUS, Lab, LoadOptions
from chaos.scenario import CATALOG
from chaos.workshop.levers import LEVERS, ArgSpec
from services.architecture.model import DEFAULT_LEASE_S, MAX_LEASE_S

if TYPE_CHECKING:
    from chaos.control import LabControl
    from chaos.lease import LeaseKeeper
    from chaos.rollout import RolloutResult
    from services.architecture import Architecture

EPILOG = """\
examples:
  failwhale setup                 find or install Prometheus (and, with --browser, Chromium)
  failwhale up                    start the lab; Ctrl-C stops every process it started
  failwhale up --for 60           start the lab for one minute, then stop by itself
  failwhale up --headless --users 60 --web-share 0.5
                                  more load, half of it on the website, no Locust UI
  failwhale up --no-load          just the services and Prometheus
  failwhale status                which architecture each process runs, which faults are active
  failwhale halt                  kill switch: every fault gone, every process back on its baseline
  failwhale up --config my.yaml   use other ports (copy services/lab.yaml to start)

The lab listens on 127.0.0.1 only. Open the web page it prints in a browser, point a
mobile-app-like client at the API URL, and watch both in Prometheus.
"""


def _ranged(kind, low: float, high: float | None = None):
    """An argparse type that names the allowed range in its one-line error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if value < low or (high is not None and value > high):
            span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: use a value {span}")
        return value

    return parse


def _scale(text: str) -> float:
    """--scale: above 0 (0 would mean no users and no capacity) and at most 100, as a scenario's load.scale."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is out of range: use a number above 0 and at most 100")
    return value


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes are one ``error:`` line and exit code 2, like every other bad input."""

    def error(self, message: str):
        raise BadInput(f"{self.prog}: {message} (see {self.prog} --help)")


def _say(msg: str) -> None:
    print(msg, flush=True)


def cmd_setup(args: argparse.Namespace) -> int:
    provision.ensure_prometheus(_say)
    if args.browser:
        provision.ensure_browser(_say)
    if args.wrk:
        provision.ensure_wrk(_say)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    lab = Lab.from_files(args.config, args.architecture, say=_say)
    stop = {"signal": None}

    def on_signal(signum, _frame) -> None:
        stop["signal"] = signum

    # Handle SIGINT/SIGTERM ourselves so a Ctrl-C during start-up still stops the children.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        took = lab.start(timeout_s=args.timeout)
        _say(f"lab ready in {took:.1f}s, running architecture {lab.arch.version}")
        _say(f"  web page    {lab.url('web')}/")
        _say(f"  API (edge)  {lab.url('edge')}/api/1.1/")
        _say(f"  Prometheus  {lab.url(PROMETHEUS)}/")
        if DASHBOARD in lab.procs:
            _say(f"  dashboard   {lab.url(DASHBOARD)}/  (live; also ?board=web, api, backends)")
        _say(f"  control token in {lab.lab.token_path} (mode 0600)")
        if not args.no_load:
            load = LoadOptions(
                headless=args.headless,
                peak_users=args.users,
                web_share=args.web_share,
                shape=args.shape,
                duration_s=args.load_duration,
                workers=args.load_workers,
            )
            lab.start_load(load)
            where = (
                "headless"
                if args.headless
                else f"web UI {lab.url('locust')}/ (user failwhale, password in {lab.ui_secret_path})"
            )
            _say(
                f"  load        {args.users} users at peak ({args.web_share:.0%} web), {args.shape} shape, "
                f"{args.load_duration:g}s, Locust {where}"
            )
        _say(
            "press Ctrl-C to stop" if args.duration is None else f"stopping by itself in {args.duration:g}s (or Ctrl-C)"
        )
        deadline = None if args.duration is None else time.monotonic() + args.duration
        reported: set[str] = set()
        while stop["signal"] is None and (deadline is None or time.monotonic() < deadline):
            if LOADGEN in lab.procs and LOADGEN not in reported and not lab.procs[LOADGEN].running:
                _say(f"load finished (summary in {lab.procs[LOADGEN].log_path})")
                reported.add(LOADGEN)
            for name in set(lab.dead()) - reported:
                _say(f"warning: {name} exited ({lab.procs[name].last_log_line() or 'no log'})")
                reported.add(name)
            time.sleep(0.2)
    finally:
        n = lab.stop()
        if n:
            _say(f"stopped {n} processes")
    # Ctrl-C is how a lab is meant to end, so it is a success, not an interruption.
    return 0


def _control(args: argparse.Namespace):
    from chaos.control import LabControl
    from configfiles.errors import ConfigError
    from services.architecture import load_architecture

    lab = Lab.from_files(args.config)
    arch = lab.arch
    # The running lab's own record of what it started with (a scaled run's, say), if it has one.
    record = lab.lab.data_path / "architecture.json"
    if record.is_file():
        try:
            arch = load_architecture(record)
        except ConfigError:
            pass  # a damaged record: the lab config's architecture names the same processes
    return LabControl.connect(lab.lab, arch)


def cmd_halt(args: argparse.Namespace) -> int:
    """Kill switch: every fault gone, every process on its baseline architecture, within a second."""
    import asyncio

    from chaos.control import halt

    started = time.monotonic()
    answers = asyncio.run(halt(_control(args), deadline_s=args.deadline))
    took = time.monotonic() - started
    failed = [a for a in answers if not a.ok]
    removed = sum(a.body.get("removed", 0) for a in answers if a.ok)
    _say(
        f"halted {len(answers) - len(failed)} of {len(answers)} processes in {took:.2f}s: "
        f"{removed} fault(s) removed, every reachable process on its baseline architecture, rollouts in progress stopped"
    )
    if failed:
        _say(
            f"warning: after {args.deadline:g}s, no confirmation from {', '.join(f'{a.instance} ({a.body})' for a in failed)}; "
            "their faults still lapse by their TTL and their architecture changes by their lease"
        )
    return 1 if failed else 0


def _rollout_target(args: argparse.Namespace, control: LabControl) -> Architecture:
    """The architecture file to roll out, if it runs the same processes as the lab (a rollout
    changes settings, not processes)."""
    from configfiles.errors import ConfigError
    from services.architecture import load_architecture

    try:
        new = load_architecture(args.file)
    except ConfigError as e:
        raise BadInput(str(e)) from e
    if set(new.instance_kinds()) != set(control.arch.instance_kinds()):
        raise BadInput(
            f"{args.file}: its processes differ from the running lab's; a rollout changes settings, not processes"
        )
    return new


def cmd_rollout(args: argparse.Namespace) -> int:
    from chaos.lease import LeaseKeeper
    from chaos.rollout import plan_waves

    control = _control(args)
    new = _rollout_target(args, control)
    waves = plan_waves(new, args.waves)
    _say(
        f"rolling out {new.version} in {len(waves)} wave(s), baking {args.bake:g}s between waves"
        + (f", guarded by: {args.guard}" if args.guard else ", unguarded")
        + ("; for good (--keep)" if args.keep else f"; held for at most {args.hold:g}s")
    )

    def terminate(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)  # kill (not -9) rolls back like Ctrl-C
    keeper = LeaseKeeper(control, lease_s=args.lease, say=_say).start()
    try:
        result, interrupted = _roll_out_and_hold(args, control, new, waves, keeper)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # nothing stops the rollback half way
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return _after_rollout(args, control, keeper, result, interrupted)
    finally:
        keeper.stop()
        signal.signal(signal.SIGTERM, previous)


def _roll_out_and_hold(
    args: argparse.Namespace, control: LabControl, new: Architecture, waves: list[list[str]], keeper: LeaseKeeper
) -> tuple[RolloutResult | None, bool]:
    """Roll ``new`` out in ``waves``, then hold it (unless --keep); (its result, whether Ctrl-C or
    a kill interrupted it). Ctrl-C may land anywhere, even inside a print: every interruption
    ends in the caller's rollback, unless the change was made for good (--keep) before it."""
    import asyncio

    from chaos.rollout import rollout

    result = None
    try:
        result = asyncio.run(
            rollout(
                control,
                new,
                waves,
                bake_s=args.bake,
                guard=args.guard,
                keeper=keeper,
                lease_s=None if args.keep else args.lease,
                prometheus_url=control.lab.url("prometheus"),
                say=_say,
            )
        )
        if not result.rolled_back and not args.keep:
            _say(
                f"{result.version} is on every process while this command runs (it renews a {args.lease:g} s "
                f"lease): Ctrl-C rolls it back, and so does the end of --hold in {args.hold:g}s; if this command "
                "dies, the processes go back by themselves when the lease lapses"
            )
            time.sleep(args.hold)
    except KeyboardInterrupt:
        return result, True
    return result, False


def _after_rollout(
    args: argparse.Namespace,
    control: LabControl,
    keeper: LeaseKeeper,
    result: RolloutResult | None,
    interrupted: bool,
) -> int:
    """Say how the rollout ended and roll back what is not kept; the command's exit code."""
    import asyncio

    from chaos.rollout import rollback

    if result is not None and result.rolled_back:
        _say(f"rolled back after {result.completed_waves} of {result.total_waves} wave(s): {result.reason}")
        return 130 if interrupted else 1
    if result is not None and args.keep:
        _say(f"{result.version} is on every process, for good: `failwhale rollback` or `failwhale halt` undoes it")
        return 130 if interrupted else 0
    # Interrupted mid-rollout, the rollout has undone its waves already; once more is harmless,
    # and covers an interruption between its end and this line.
    stuck = asyncio.run(rollback(control, keeper=keeper))
    if stuck:
        _say(f"warning: {', '.join(stuck)} did not confirm the rollback; their leases lapse within {args.lease:g} s")
    if result is None:
        _say("interrupted: rolled back")
        return 130
    _say(f"rolled back {result.version}" + (" (interrupted)" if interrupted else f" after holding it {args.hold:g}s"))
    return 130 if interrupted else (1 if stuck else 0)


def cmd_rollback(args: argparse.Namespace) -> int:
    import asyncio

    from chaos.rollout import rollback

    stuck = asyncio.run(rollback(_control(args)))
    for name in stuck:
        _say(f"warning: {name} did not answer")
    _say("every process is back on its baseline architecture" if not stuck else "rollback incomplete")
    return 1 if stuck else 0


def parse_waves(text: str) -> list[float] | list[list[str]]:
    """``0.25,0.5,1`` (shares of the replicas) or ``api-1;api-2,api-3`` (named replicas per wave)."""
    if any(c.isalpha() for c in text):
        return [[n.strip() for n in wave.split(",") if n.strip()] for wave in text.split(";")]
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected shares like 0.25,0.5,1 or replicas like api-1;api-2,api-3"
        ) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from chaos.scenario import ScenarioError, load_scenario

    bad = 0
    for path in args.files:
        try:
            s = load_scenario(path)
        except ScenarioError as e:
            print(f"error: {e}", file=sys.stderr)
            bad += 1
        else:
            _say(
                f"ok: {path}: {s.title} ({len(s.timeline)} steps, {len(s.phases)} phases, "
                f"{len(s.expectations)} expectations, {s.duration:g}s at speed {s.speed:g})"
            )
    return 2 if bad else 0


SCALE_HELP = (
    "K times the users, and every rate limit and concurrency capacity the run uses K times too; "
    "timeouts, lifetimes and think times stay (default: the scenario's load.scale, usually 1)."
)
END_WAIT_S = 180.0  # how long `workshop end` waits for the game's scorecard and postmortem


def scenario_path(name: str) -> Path:
    """A scenario file named by path, or by its name in the catalog (failwhale list)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = CATALOG / f"{name}.yaml"
    if not candidate.exists():
        known = ", ".join(sorted(p.stem for p in CATALOG.glob("*.yaml"))) or "none yet"
        raise BadInput(f"no scenario named {name!r} (known: {known}; or give a file path)")
    return candidate


def cmd_list(args: argparse.Namespace) -> int:
    from chaos.scenario import ScenarioError, load_scenario

    files = sorted(CATALOG.glob("*.yaml"))
    if not files:
        _say(f"no scenarios in {CATALOG} yet")
    for path in files:
        try:
            _say(f"{path.stem:<32}{load_scenario(path).title}")
        except ScenarioError as e:
            _say(f"{path.stem:<32}(invalid: {e})")
    return 0


def _play(name_or_file: str, args: argparse.Namespace, quick: bool | None = None) -> tuple[int, Path | None]:
    """Run one scenario, then write its report and the folder's index; (exit code, run folder)."""
    from chaos.engine.runner import Runner
    from chaos.scenario import load_scenario

    path = scenario_path(name_or_file)
    scenario = load_scenario(path)
    quick = args.quick if quick is None else quick
    if quick and scenario.quick is None:
        raise BadInput(f"{path}: the scenario has no quick variant (add a quick: section with a speed)")
    speed = args.speed or (scenario.quick.speed if quick and scenario.quick else scenario.speed)
    setup = 25 if quick else 40
    _say(
        f"{scenario.title}: {scenario.duration:g}s of scenario time at speed {speed:g} "
        f"(about {scenario.duration / speed + setup:.0f}s with set-up and recovery)"
    )
    runner = Runner(
        scenario, path.stem, args.out, speed, args.config, say=_say, attach=args.attach, quick=quick, scale=args.scale
    )
    code = runner.run()
    if (runner.run_dir / "summary.json").exists():
        _write_reports(args.out, [runner.run_dir])
    return code, runner.run_dir


def _write_reports(out: Path, run_dirs: list[Path]) -> bool:
    """Each run's report, then the folder's index; False if a report could not be made."""
    from chaos.report import ReportError, render_index, render_run

    ok = True
    for run_dir in run_dirs:
        try:
            _say(f"report: {render_run(run_dir)}")
        except (ReportError, records.RecordError) as e:  # one run's files: the others are still reported
            print(f"error: {e}", file=sys.stderr)
            ok = False
    everything = sorted(d for d in out.iterdir() if (d / "summary.json").exists())
    _say(f"index: {render_index(out, everything)}")
    return ok


def cmd_run(args: argparse.Namespace) -> int:
    return _play(args.scenario, args)[0]


def catalog_order(paths: list[Path]) -> list[Path]:
    """Catalog order: by name, except that scenarios comparing themselves with another run last."""
    from chaos.scenario import load_scenario

    return sorted(paths, key=lambda p: (load_scenario(p).compare is not None, p.stem))


def cmd_scenarios(args: argparse.Namespace) -> int:
    from chaos.report import table
    from chaos.scenario import load_scenario

    paths = [CATALOG / f"{n}.yaml" for n in args.only] if args.only else sorted(CATALOG.glob("*.yaml"))
    for p in paths:
        if not p.is_file():
            raise BadInput(f"no scenario named {p.stem} (see failwhale list)")
    paths = catalog_order(paths)
    _say(f"{len(paths)} scenarios: {', '.join(p.stem for p in paths)}")
    started = time.time()
    summaries: list[records.Summary] = []
    codes = []
    for i, path in enumerate(paths, 1):
        _say(f"\n=== {i}/{len(paths)} {path.stem} ({time.time() - started:.0f}s so far) ===")
        code, run_dir = _play(str(path), args, quick=args.quick and load_scenario(path).quick is not None)
        codes.append(code)
        if code == 130:
            _say("interrupted: the rest of the catalog is skipped")
            break
        if run_dir is not None and (run_dir / "summary.json").exists():
            try:
                summaries.append(records.read(run_dir / "summary.json", records.Summary))
            except records.RecordError as e:  # left out of the table; the other runs still count
                print(f"error: {e}", file=sys.stderr)
    _say(f"\n{table(summaries)}")
    _say(f"whole catalog: {time.time() - started:.0f}s; reports: {args.out / 'index.html'}")
    if 130 in codes:
        return 130
    return 0 if codes and all(c == 0 for c in codes) and len(codes) == len(paths) else 1


def cmd_report(args: argparse.Namespace) -> int:
    for d in args.run_dirs:
        if not (d / "summary.json").is_file():
            raise BadInput(f"{d}: not a run folder (no summary.json)")
    ok = True
    for out in sorted({d.resolve().parent for d in args.run_dirs}):
        ok &= _write_reports(out, [d for d in args.run_dirs if d.resolve().parent == out])
    return 0 if ok else 2


def _lease_text(arch: dict | None) -> str:
    """How long a process keeps a change unless renewed: ``12s left``, ``kept`` (no lease) or ``-`` (on its baseline)."""
    if arch is None:
        return "?"
    if arch.get("version") == arch.get("baseline"):
        return "-"
    left = arch.get("lease_expires_in_s")
    return "kept" if left is None else f"{left:.0f}s left"


def cmd_status(args: argparse.Namespace) -> int:
    import asyncio

    control = _control(args)

    async def gather():
        return await asyncio.gather(
            control.each("GET", "/readyz"),
            control.each("GET", "/control/faults"),
            control.each("GET", "/control/architecture"),
        )

    ready, faults, archs = asyncio.run(gather())
    _say(f"{'process':<15}{'ready':<8}{'version':<10}{'lease':<14}faults")
    for r, f, a in zip(ready, faults, archs, strict=True):
        version = r.body.get("version", "?") if isinstance(r.body, dict) else "?"
        lease = _lease_text(a.body if a.ok and isinstance(a.body, dict) else None)
        active = f.body.get("faults", []) if f.ok else []
        described = ", ".join(f"{x['kind']} ({x['expires_in_s']:.0f}s left)" for x in active) or "-"
        _say(f"{r.instance:<15}{'yes' if r.ok else 'NO':<8}{version:<10}{lease:<14}{described}")
    return 0 if all(r.ok for r in ready) else 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="failwhale",
        description="A chaos-engineering lab that replays the 2022-12-28 Twitter backend rollout outage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Every command that talks to a lab finds it through its lab config.
    lab_config = _Parser(add_help=False)
    lab_config.add_argument("--config", type=Path, help="lab config (default: services/lab.yaml)")

    s = sub.add_parser(
        "setup",
        help="find or install the tools the lab needs (Prometheus; optionally Chromium, wrk)",
        description="Find Prometheus (PROMETHEUS_BIN, PATH, or the download cache) or install it: "
        "Debian/Ubuntu package as root, Homebrew on macOS, else the official release.",
    )
    s.add_argument("--browser", action="store_true", help="also make sure Chromium is installed (browser tests)")
    s.add_argument("--wrk", action="store_true", help="also make sure wrk is installed (benchmarks)")
    s.set_defaults(func=cmd_setup)

    u = sub.add_parser(
        "up",
        help="start every service and Prometheus; Ctrl-C stops them all",
        description="Start the web frontend, the edge, the API replicas, the backends and a real "
        "Prometheus scraping them every second; print their URLs; stop them all on Ctrl-C.",
    )
    u.add_argument("--config", type=Path, help="lab config with ports and data folder (default: services/lab.yaml)")
    u.add_argument("--architecture", type=Path, help="architecture file to start with (default: the lab config's, v1)")
    u.add_argument(
        "--for", dest="duration", type=_ranged(float, 0.1), metavar="SECONDS", help="stop by itself after this long"
    )
    load = u.add_argument_group("load", "Locust's web-browser and mobile-app users (see loadtest/locustfile.py)")
    load.add_argument("--no-load", action="store_true", help="start the lab without the load generator")
    load.add_argument("--headless", action="store_true", help="run the load without Locust's web UI")
    load.add_argument(
        "--users",
        type=_ranged(int, 1, 10000),
        default=30,
        metavar="N",
        help="simulated users at the evening peak (default: %(default)s)",
    )
    load.add_argument(
        "--web-share",
        type=_ranged(float, 0, 1),
        default=0.4,
        metavar="X",
        help="share of users on the desktop site, 0..1 (default: %(default)s)",
    )
    load.add_argument(
        "--shape", choices=["evening", "constant"], default="evening", help="load over time (default: %(default)s)"
    )
    load.add_argument(
        "--load-duration",
        type=_ranged(float, 1, 86400),
        default=360.0,
        metavar="SECONDS",
        help="the load stops by itself after this (default: %(default)s)",
    )
    load.add_argument(
        "--load-workers",
        type=_ranged(int, 0, 64),
        default=0,
        metavar="N",
        help="Locust worker processes (default: one process)",
    )
    u.add_argument(
        "--timeout",
        type=_ranged(float, 1, 600),
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for every process to be ready (default: %(default)s)",
    )
    u.set_defaults(func=cmd_up)

    h = sub.add_parser(
        "halt",
        parents=[lab_config],
        help="kill switch: remove every fault, put every process back on its baseline architecture",
        description="Stop every rollout in progress (before its next wave, in whichever process runs it), "
        "remove every active fault from every lab process and move each one back to the "
        "architecture it started with, asking again every process that has not confirmed "
        "until --deadline. Needs a running lab (it reads the lab's control token).",
    )
    h.add_argument(
        "--deadline",
        type=_ranged(float, 0.5, 600),
        default=5.0,
        metavar="SECONDS",
        help="keep asking unconfirmed processes this long (default: %(default)s)",
    )
    h.set_defaults(func=cmd_halt)

    ro = sub.add_parser(
        "rollout",
        parents=[lab_config],
        help="move the running lab to another architecture, in waves, with an optional guard",
        description="Roll an architecture file out to the running lab: non-API processes with the first "
        "wave, then the API replicas by cumulative shares or named lists. Between waves the guard (a PromQL "
        "expression that returns something only when things are bad) is checked every 2 s; "
        "if it fires, or on Ctrl-C, every moved process goes back to its baseline. Each process "
        "holds the change under a lease this command renews, so the change lasts while the command "
        "runs: until Ctrl-C or the end of --hold, which roll it back, or, if the command is killed, "
        "until the lease lapses (--lease). --keep makes the change permanent and returns at once.",
    )
    ro.add_argument("file", type=Path, help="the new architecture file, e.g. services/architecture/v2.yaml")
    ro.add_argument(
        "--waves",
        type=parse_waves,
        default=[0.25, 0.5, 1.0],
        metavar="WAVES",
        help="cumulative shares of the API replicas (0.25,0.5,1: the default) or the replicas "
        "of each wave (api-1;api-2,api-3: api-4 then follows in a last wave)",
    )
    ro.add_argument(
        "--bake",
        type=_ranged(float, 0, 3600),
        default=10.0,
        metavar="SECONDS",
        help="wait between waves (default: %(default)s)",
    )
    ro.add_argument(
        "--guard",
        metavar="PROMQL",
        help='e.g. \'sum(rate(failwhale_journeys_total{client="web",outcome="failed"}[15s])) '
        '/ sum(rate(failwhale_journeys_total{client="web"}[15s])) > 0.1\'',
    )
    ro.add_argument(
        "--hold",
        type=_ranged(float, 0, 24 * 3600),
        default=3600.0,
        metavar="SECONDS",
        help="after the last wave, keep the change this long, then roll it back (default: %(default)s)",
    )
    ro.add_argument(
        "--lease",
        type=_ranged(float, 1, MAX_LEASE_S),
        default=DEFAULT_LEASE_S,
        metavar="SECONDS",
        help="how long each process keeps the change if this command stops renewing it (default: %(default)s)",
    )
    ro.add_argument(
        "--keep",
        action="store_true",
        help="make the change permanent (no lease) and return once it is rolled out; "
        "`failwhale rollback` or `halt` undoes it",
    )
    ro.set_defaults(func=cmd_rollout)

    rb = sub.add_parser(
        "rollback", parents=[lab_config], help="put every process back on the architecture it started with"
    )
    rb.set_defaults(func=cmd_rollback)

    va = sub.add_parser(
        "validate",
        help="check scenario files without running anything",
        description="Check scenario files against the schema (chaos/scenario.schema.json) and for what "
        "a schema cannot say: steps in time order, phases that exist, architecture files that "
        "exist. Each problem is one line: file:line: field: what is wrong. Exit code 2 if any.",
    )
    va.add_argument("files", type=Path, nargs="+", metavar="FILE")
    va.set_defaults(func=cmd_validate)

    ru = sub.add_parser(
        "run",
        parents=[lab_config],
        help="run one scenario: lab, load, timeline, rollbacks, verdict, run folder",
        description="Start a fresh lab and the load, check the steady state, play the scenario's timeline "
        "in compressed time, always run its rollbacks (also on Ctrl-C), check the steady state "
        "again, and write <out>/<scenario>-<time>/journal.json and summary.json. Exit code 0: "
        "expectations held; 1: something deviated; 2: bad input; 130: interrupted.",
    )
    ru.add_argument("scenario", help="a scenario name (see failwhale list) or a scenario file")
    ru.add_argument("--speed", type=_ranged(float, 0.01, 100), help="time compression (default: the scenario's own)")
    ru.add_argument("--out", type=Path, default=Path("reports"), help="where run folders go (default: %(default)s)")
    ru.add_argument(
        "--attach",
        action="store_true",
        help="play the scenario on the lab `failwhale up` is running, with its load, instead of a fresh one",
    )
    ru.add_argument(
        "--quick",
        action="store_true",
        help="play the scenario's quick variant: the same timeline faster (its quick: speed), for tests",
    )
    ru.add_argument("--scale", type=_scale, metavar="K", help=SCALE_HELP + " Not with --attach.")
    ru.set_defaults(func=cmd_run, attach=False)

    sc = sub.add_parser(
        "scenarios",
        parents=[lab_config],
        help="run the whole catalog, one scenario after another; reports and a table",
        description="Run every scenario in the catalog headless, one after another, each on a fresh lab, "
        "and write one run folder each plus <out>/index.html linking every report. Ends with a "
        "table: scenario, verdict, web and app failure ratio, reports by category, time to "
        "recover. Exit code 0 only if every verdict is held.",
    )
    sc.add_argument("--out", type=Path, default=Path("reports"), help="where run folders go (default: %(default)s)")
    sc.add_argument("--quick", action="store_true", help="play each scenario's quick variant where it has one")
    sc.add_argument(
        "--speed", type=_ranged(float, 0.01, 100), help="one time compression for all (default: each scenario's own)"
    )
    sc.add_argument("--only", nargs="+", metavar="NAME", help="run just these scenarios (in catalog order)")
    sc.add_argument("--scale", type=_scale, metavar="K", help=SCALE_HELP)
    sc.set_defaults(func=cmd_scenarios, attach=False)

    rp = sub.add_parser(
        "report",
        help="write (again) the report of run folders and their folder's index.html",
        description="Make report.md, report.html and plots/*.png of each run folder from its summary.json "
        "and series.json, then rewrite index.html in the folder that holds the runs.",
    )
    rp.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    rp.set_defaults(func=cmd_report)

    li = sub.add_parser("list", help="every scenario in the catalog with its title")
    li.set_defaults(func=cmd_list)

    st = sub.add_parser(
        "status", parents=[lab_config], help="each process: ready or not, architecture version, active faults"
    )
    st.set_defaults(func=cmd_status)

    wk = sub.add_parser(
        "workshop",
        help="a game day: a hidden outage, levers for the participants, a scorecard",
        description="Teach incident response on a replayed outage. `start` plays a scenario without "
        "naming it and leaves its fix to the participants; `sheet` prints the facilitator's "
        "private sheet; `lever` pulls a lever on the running lab; `end` stops the game and "
        "writes the scorecard and a postmortem draft into the run folder. See docs/workshop.md.",
    )
    wsub = wk.add_subparsers(dest="workshop_command", required=True, metavar="ACTION")
    ws = wsub.add_parser(
        "start",
        parents=[lab_config],
        help="start the lab, the load and the dashboard; play a hidden scenario",
        description="Start a fresh lab with its load and dashboard and play a workshop scenario without "
        "naming it: after a quiet lead-in only the seed knows, the change happens, and the "
        "scenario's own rollback is left to the participants. Runs until `failwhale workshop "
        "end` or --for. Same seed, same scenario, same times.",
    )
    pick = ws.add_mutually_exclusive_group()
    pick.add_argument(
        "--scenario", metavar="NAME", help="play this scenario (failwhale list); default: one picked by the seed"
    )
    pick.add_argument("--random", action="store_true", help="let the seed pick the scenario (the default)")
    ws.add_argument(
        "--seed", type=int, metavar="N", help="the seed: scenario and lead-in (default: a new one, printed)"
    )
    ws.add_argument("--speed", type=_ranged(float, 0.01, 100), help="time compression (default: the scenario's own)")
    ws.add_argument(
        "--quick", action="store_true", help="the scenario's quick variant (faster, lighter): for a try-out and tests"
    )
    ws.add_argument("--scale", type=_scale, metavar="K", help=SCALE_HELP)
    ws.add_argument(
        "--for",
        dest="limit",
        type=_ranged(float, 10, 4 * 3600),
        default=1800.0,
        metavar="SECONDS",
        help="the game ends by itself after this long (default: %(default)s)",
    )
    ws.add_argument(
        "--out", type=Path, default=Path("reports"), help="where the run folder goes (default: %(default)s)"
    )
    ws.set_defaults(func=cmd_workshop_start)
    wsh = wsub.add_parser(
        "sheet", parents=[lab_config], help="print the facilitator's private sheet of the running workshop"
    )
    wsh.set_defaults(func=cmd_workshop_sheet)
    _lever_parsers(wsub, lab_config)
    we = wsub.add_parser("end", parents=[lab_config], help="end the running workshop: scorecard and postmortem draft")
    we.add_argument("--who", default=os.environ.get("USER", "someone"), help="who ends it (default: $USER)")
    we.set_defaults(func=cmd_workshop_end)
    return p


def _lever_parsers(wsub: argparse._SubParsersAction, lab_config: argparse.ArgumentParser) -> None:
    """``workshop lever LEVER [--ARG ...]``: a subcommand per lever of the table, an option per argument."""
    wl = wsub.add_parser(
        "lever",
        help="pull a lever on the running workshop's lab",
        description="Pull one lever on the running workshop's lab. Each acts on the lab for real "
        "(a wrong one has its real consequence) and is logged with who pulled it and when. "
        "The same levers are on the levers page beside the dashboard; "
        "`failwhale workshop lever LEVER --help` says what one takes.",
        epilog="example: failwhale workshop lever declare --severity SEV1 --who alice",
    )
    who = _Parser(add_help=False)
    who.add_argument("--who", default=os.environ.get("USER", "someone"), help="who pulls it (default: $USER)")
    levers = wl.add_subparsers(dest="lever", required=True, metavar="LEVER", title="levers")
    for lever in LEVERS.values():
        lp = levers.add_parser(
            lever.name,
            parents=[lab_config, who],
            help=lever.help,
            description=f"{lever.help[0].upper()}{lever.help[1:]}.",
            epilog=f"example: failwhale workshop lever {lever.name} "
            + "".join(f"{_lever_example(a)} " for a in lever.args)
            + "--who alice",
        )
        for arg in lever.args:
            lp.add_argument(
                f"--{arg.name}",
                choices=arg.choices or None,
                required=arg.required,
                metavar=None if arg.choices else arg.name.upper(),
                help=_lever_arg_help(arg),
            )
        lp.set_defaults(func=cmd_workshop_lever)


def _lever_arg_help(arg: ArgSpec) -> str:
    """An argument's help, with its range, default and an example, as ``--help`` shows it."""
    more = []
    if arg.minimum is not None and arg.maximum is not None:
        more.append(f"from {arg.minimum:g} to {arg.maximum:g}")
    if arg.max_length is not None:
        more.append(f"at most {arg.max_length} characters")
    if arg.required:
        more.append("required")
    elif arg.default is not None:
        more.append(f"default: {arg.default:g}" if isinstance(arg.default, float) else f"default: {arg.default}")
    elif arg.blank is not None:
        more.append(f"default: {arg.blank}")
    if arg.example is not None:
        more.append(f"e.g. {arg.example}")
    return arg.help + (f" ({'; '.join(more)})" if more else "")


def _lever_example(arg: ArgSpec) -> str:
    """``--name value`` with a value the argument takes, for a lever's example line."""
    value = arg.example or (f"{arg.default:g}" if isinstance(arg.default, float) else arg.default)
    if value is None:
        value = arg.choices[0] if arg.choices else "..."
    return f"--{arg.name} {shlex.quote(value)}"


def _lab_config(args: argparse.Namespace):
    return Lab.from_files(args.config).lab


def cmd_workshop_start(args: argparse.Namespace) -> int:
    from chaos.scenario import load_scenario
    from chaos.workshop.game import Game
    from chaos.workshop.plan import hidden, plan, sheet
    from chaos.workshop.scorecard import scorecard_text

    p = plan(args.seed, args.scenario)
    scenario = load_scenario(p.path)
    if args.quick and scenario.quick is None:
        # Naming it would tell the room what is coming, unless the facilitator named it.
        raise BadInput(
            f"--quick: {'the scenario ' + repr(args.scenario) if args.scenario else f'the scenario seed {p.seed} picks'} "
            "has no quick variant: leave out --quick, or pick another seed"
        )
    speed = args.speed or (scenario.quick.speed if args.quick and scenario.quick else scenario.speed)
    played = hidden(scenario, p.lead_in_s)
    lab = _lab_config(args)
    _say(f"workshop (seed {p.seed})")
    if DASHBOARD in lab.ports:
        _say(f"  dashboard   {lab.url(DASHBOARD)}/   levers: failwhale workshop lever --help")
    game = Game(
        played,
        "workshop",
        args.out,
        speed,
        args.config,
        say=_say,
        quick=args.quick,
        scale=args.scale,
        plan=p,
        limit_s=args.limit,
        sheet_text=sheet(p, played, speed),
    )
    code = game.run()
    run_dir = game.runner.run_dir
    if (run_dir / "summary.json").exists():
        _write_reports(args.out, [run_dir])
        card = records.read(run_dir / "scorecard.json", records.Scorecard)
        _say(scorecard_text(card))
        _say(f"postmortem draft: {run_dir / 'postmortem.html'} (and postmortem.md)")
    return code


def cmd_workshop_sheet(args: argparse.Namespace) -> int:
    from chaos.workshop.client import room_link
    from chaos.workshop.room import SHEET_FILE, workshop_dir

    lab = _lab_config(args)
    path = workshop_dir(lab) / SHEET_FILE
    try:
        print(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BadInput(f"no facilitator sheet at {path}: start a workshop first (failwhale workshop start)") from e
    link = room_link(lab)
    print(
        f"## The room's levers page\n\n{link}\n\nShare it with the room only: it holds the workshop's token."
        if link
        else "(the levers page's link appears here once the lab is up)"
    )
    return 0


def cmd_workshop_lever(args: argparse.Namespace) -> int:
    from chaos.workshop.client import send
    from chaos.workshop.levers import parse_args

    lever = LEVERS[args.lever]
    given = {a.name: getattr(args, a.name) for a in lever.args if getattr(args, a.name) is not None}
    # The same check as the levers' server: a bad argument is one line before anything is sent.
    pulled = parse_args(lever.name, given)
    answer = send(_lab_config(args), lever.name, args.who, pulled, timeout_s=lever.answer_within_s)
    at = answer.at
    _say(f"{lever.name} by {args.who}" + (f" at T+{at:g}s" if at is not None else "") + f": {answer.note}")
    return 0


def cmd_workshop_end(args: argparse.Namespace) -> int:
    from chaos.workshop.client import send
    from chaos.workshop.scorecard import scorecard_text

    answer = send(_lab_config(args), "end", args.who)
    if answer.run_dir is None:
        raise BadInput("the workshop did not say where its run folder is: see the workshop's terminal")
    run_dir = Path(answer.run_dir)
    _say(f"{answer.note}: rolling back, measuring and writing the postmortem (up to {END_WAIT_S:.0f}s)")
    card_path, last = run_dir / "scorecard.json", run_dir / "postmortem.html"  # the postmortem is written last
    deadline = time.monotonic() + END_WAIT_S
    while not last.exists():
        if time.monotonic() > deadline:
            raise BadInput(f"no postmortem in {run_dir} after {END_WAIT_S:.0f}s: see the workshop's terminal")
        time.sleep(1)
    _say(scorecard_text(records.read(card_path, records.Scorecard)))
    _say(f"postmortem draft: {run_dir / 'postmortem.html'} (and postmortem.md)")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except ChaosError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        # Only before a command has changed anything: from then on, each command catches it to undo.
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

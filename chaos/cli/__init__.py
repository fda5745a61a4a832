"""The ``failwhale`` command: its parser and ``main``; each command group lives in a module of its own.

``lab`` (setup, up, status, halt), ``changes`` (rollout, rollback), ``scenarios`` (validate, list,
run, scenarios, report) and ``workshop`` (start, sheet, lever, end); ``common`` holds what they
share. Every error a user can cause is printed as one ``error: ...`` line with exit code 2; a lab
that fails to start exits 1. Nothing here prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from chaos.cli.changes import cmd_rollback, cmd_rollout, parse_waves
from chaos.cli.common import SCALE_HELP, Parser, ranged, scale_arg
from chaos.cli.deploy import cmd_k8s
from chaos.cli.lab import cmd_halt, cmd_serve, cmd_setup, cmd_status, cmd_up
from chaos.cli.scenarios import cmd_list, cmd_report, cmd_run, cmd_scenarios, cmd_validate
from chaos.cli.workshop import (
    add_lever_parsers,
    cmd_workshop_end,
    cmd_workshop_sheet,
    cmd_workshop_start,
)
from chaos.errors import ChaosError
from chaos.lab.supervisor import MAX_LOAD_S, MAX_USERS
from services.architecture.model import DEFAULT_LEASE_S, MAX_LEASE_S

SERVE_EPILOG = """\
examples, a lab over three hosts (docs/deploy.md):
  failwhale serve api-1 --lab spread.yaml        on the host spread.yaml gives api-1
  failwhale serve prometheus --lab spread.yaml   scrapes every process at its own address
  failwhale serve loadgen-worker --lab spread.yaml         on two hosts
  failwhale serve loadgen --lab spread.yaml --headless --expect-workers 2 --users 200
  failwhale run headline --attach --lab spread.yaml        from anywhere that reaches them
"""

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

The lab listens on 127.0.0.1 only, unless its config opts in to a network: `failwhale serve`
then runs each process on its own host, and `failwhale k8s` writes a Kubernetes base
(docs/deploy.md). Open the web page it prints in a browser, point a mobile-app-like client at
the API URL, and watch both in Prometheus.
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="failwhale",
        description="A chaos-engineering lab that replays the 2022-12-28 Twitter backend rollout outage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Every command that talks to a lab finds it through its lab config.
    lab_config = Parser(add_help=False)
    lab_config.add_argument(
        "--config", "--lab", type=Path, dest="config", help="lab config (default: services/lab.yaml)"
    )

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
    u.add_argument(
        "--config",
        "--lab",
        type=Path,
        dest="config",
        help="lab config with addresses and data folder (default: services/lab.yaml)",
    )
    u.add_argument("--architecture", type=Path, help="architecture file to start with (default: the lab config's, v1)")
    u.add_argument(
        "--for", dest="duration", type=ranged(float, 0.1), metavar="SECONDS", help="stop by itself after this long"
    )
    add_load_options(u)
    u.add_argument(
        "--timeout",
        type=ranged(float, 1, 600),
        default=15.0,
        metavar="SECONDS",
        help="how long to wait for every process to be ready (default: %(default)s)",
    )
    u.set_defaults(func=cmd_up)

    sv = sub.add_parser(
        "serve",
        parents=[lab_config],
        help="run one process of the lab in the foreground, where the lab config places it",
        description="Run one lab process in the foreground (for systemd, Kubernetes, or a shell on each "
        "host): a service instance (web, edge, api-1, ...), prometheus, dashboard, loadgen (the Locust "
        "master, or the whole load on one machine) or loadgen-worker (a Locust worker that joins the "
        "master at locust-master). Every process binds its own address from the lab config; every "
        "service reads the control token from the data folder, made on first use. `failwhale up` does "
        "all of this on one machine.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sv.add_argument("name", help="the process to run (see above)")
    sv.add_argument("--architecture", type=Path, help="architecture file to start with (default: the lab config's)")
    add_load_options(sv)
    sv.set_defaults(func=cmd_serve)

    k8 = sub.add_parser(
        "k8s",
        help="write the Kubernetes base (deploy/k8s/) from the lab config and the architecture",
        description="Write a kustomize base for the whole lab: one Deployment and Service per process, "
        "probes, Prometheus and its rules, the Locust master and workers, the dashboard, the lab config "
        "and architecture as ConfigMaps, and the control token (made once, git-ignored) as a Secret. "
        "Apply it with `kubectl apply -k deploy/k8s` (docs/deploy.md).",
    )
    k8.add_argument("--out", type=Path, default=Path("deploy/k8s"), help="where it goes (default: %(default)s)")
    k8.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the files that differ from a fresh build",
    )
    k8.set_defaults(func=cmd_k8s)

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
        type=ranged(float, 0.5, 600),
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
        type=ranged(float, 0, 3600),
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
        type=ranged(float, 0, 24 * 3600),
        default=3600.0,
        metavar="SECONDS",
        help="after the last wave, keep the change this long, then roll it back (default: %(default)s)",
    )
    ro.add_argument(
        "--lease",
        type=ranged(float, 1, MAX_LEASE_S),
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
    ru.add_argument("--speed", type=ranged(float, 0.01, 100), help="time compression (default: the scenario's own)")
    ru.add_argument("--out", type=Path, default=Path("reports"), help="where run folders go (default: %(default)s)")
    ru.add_argument(
        "--attach",
        action="store_true",
        help="play the scenario on a running lab and its load, instead of a fresh one: the one `failwhale up` "
        "runs, or processes `failwhale serve` runs on other hosts where --lab FILE places them (docs/deploy.md)",
    )
    ru.add_argument(
        "--quick",
        action="store_true",
        help="play the scenario's quick variant: the same timeline faster (its quick: speed), for tests",
    )
    ru.add_argument("--scale", type=scale_arg, metavar="K", help=SCALE_HELP + " Not with --attach.")
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
        "--speed", type=ranged(float, 0.01, 100), help="one time compression for all (default: each scenario's own)"
    )
    sc.add_argument("--only", nargs="+", metavar="NAME", help="run just these scenarios (in catalog order)")
    sc.add_argument("--scale", type=scale_arg, metavar="K", help=SCALE_HELP)
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
    ws.add_argument("--speed", type=ranged(float, 0.01, 100), help="time compression (default: the scenario's own)")
    ws.add_argument(
        "--quick", action="store_true", help="the scenario's quick variant (faster, lighter): for a try-out and tests"
    )
    ws.add_argument("--scale", type=scale_arg, metavar="K", help=SCALE_HELP + " Not with --attach.")
    ws.add_argument(
        "--room",
        metavar="ADDRESS",
        help="also serve the dashboard and the levers page on ADDRESS (HOST or HOST:PORT, an address of "
        "this machine; port 18093 by default) for participants' own browsers, behind the room's token; "
        "prints the link and a QR code. Everything else stays on loopback",
    )
    ws.add_argument(
        "--attach",
        action="store_true",
        help="play on a running lab (`failwhale up`, or processes `failwhale serve` runs where the lab "
        "config places them) and its load, instead of starting one",
    )
    ws.add_argument(
        "--for",
        dest="limit",
        type=ranged(float, 10, 4 * 3600),
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
    add_lever_parsers(wsub, lab_config)
    we = wsub.add_parser("end", parents=[lab_config], help="end the running workshop: scorecard and postmortem draft")
    we.add_argument("--who", default=os.environ.get("USER", "someone"), help="who ends it (default: $USER)")
    we.set_defaults(func=cmd_workshop_end)
    return p


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The load's options, shared by ``up`` and ``serve loadgen``."""
    load = parser.add_argument_group("load", "Locust's web-browser and mobile-app users (see loadtest/locustfile.py)")
    load.add_argument("--no-load", action="store_true", help="start the lab without the load generator")
    load.add_argument("--headless", action="store_true", help="run the load without Locust's web UI")
    load.add_argument(
        "--users",
        type=ranged(int, 1, MAX_USERS),
        default=30,
        metavar="N",
        help="simulated users at the evening peak (default: %(default)s)",
    )
    load.add_argument(
        "--web-share",
        type=ranged(float, 0, 1),
        default=0.4,
        metavar="X",
        help="share of users on the desktop site, 0..1 (default: %(default)s)",
    )
    load.add_argument(
        "--shape", choices=["evening", "constant"], default="evening", help="load over time (default: %(default)s)"
    )
    load.add_argument(
        "--load-duration",
        type=ranged(float, 1, MAX_LOAD_S),
        default=360.0,
        metavar="SECONDS",
        help="the load stops by itself after this (default: %(default)s)",
    )
    load.add_argument(
        "--load-workers",
        type=ranged(int, 0, 64),
        default=0,
        metavar="N",
        help="Locust worker processes on this machine (default: one process)",
    )
    load.add_argument(
        "--expect-workers",
        type=ranged(int, 0, 1024),
        default=0,
        metavar="N",
        help="run a master that waits for N workers from anywhere (`failwhale serve loadgen-worker`)",
    )


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

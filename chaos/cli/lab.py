"""``failwhale setup``, ``up``, ``serve``, ``status`` and ``halt``: the lab itself, its processes, and the kill switch."""

from __future__ import annotations

import argparse
import signal
import time

from chaos.cli.common import lab_control, say
from chaos.errors import BadInput
from chaos.lab import provision, serve
from chaos.lab.supervisor import DASHBOARD, LOADGEN, PROMETHEUS, Lab, LoadOptions


def cmd_setup(args: argparse.Namespace) -> int:
    provision.ensure_prometheus(say)
    if args.browser:
        provision.ensure_browser(say)
    if args.wrk:
        provision.ensure_wrk(say)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    lab = Lab.from_files(args.config, args.architecture, say=say)
    stop = {"signal": None}

    def on_signal(signum, _frame) -> None:
        stop["signal"] = signum

    # Handle SIGINT/SIGTERM ourselves so a Ctrl-C during start-up still stops the children.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        took = lab.start(timeout_s=args.timeout)
        say(f"lab ready in {took:.1f}s, running architecture {lab.arch.version}")
        say(f"  web page    {lab.url('web')}/")
        say(f"  API (edge)  {lab.url('edge')}/api/1.1/")
        say(f"  Prometheus  {lab.url(PROMETHEUS)}/")
        if DASHBOARD in lab.procs:
            say(f"  dashboard   {lab.url(DASHBOARD)}/  (live; also ?board=web, api, backends)")
        say(f"  control token in {lab.lab.token_path} (mode 0600)")
        if outside := lab.lab.on_network():
            say(f"  reachable from other machines (network: true): {', '.join(outside)}")
        if not args.no_load:
            lab.start_load(load_options(args))
            where = (
                "headless"
                if args.headless
                else f"web UI {lab.url('locust')}/ (user failwhale, password in {lab.ui_secret_path})"
            )
            say(
                f"  load        {args.users} users at peak ({args.web_share:.0%} web), {args.shape} shape, "
                f"{args.load_duration:g}s, Locust {where}"
            )
        say(
            "press Ctrl-C to stop" if args.duration is None else f"stopping by itself in {args.duration:g}s (or Ctrl-C)"
        )
        deadline = None if args.duration is None else time.monotonic() + args.duration
        reported: set[str] = set()
        while stop["signal"] is None and (deadline is None or time.monotonic() < deadline):
            if LOADGEN in lab.procs and LOADGEN not in reported and not lab.procs[LOADGEN].running:
                say(f"load finished (summary in {lab.procs[LOADGEN].log_path})")
                reported.add(LOADGEN)
            for name in set(lab.dead()) - reported:
                say(f"warning: {name} exited ({lab.procs[name].last_log_line() or 'no log'})")
                reported.add(name)
            time.sleep(0.2)
    finally:
        n = lab.stop()
        if n:
            say(f"stopped {n} processes")
    # Ctrl-C is how a lab is meant to end, so it is a success, not an interruption.
    return 0


def load_options(args: argparse.Namespace) -> LoadOptions:
    return LoadOptions(
        headless=args.headless,
        peak_users=args.users,
        web_share=args.web_share,
        shape=args.shape,
        duration_s=args.load_duration,
        workers=args.load_workers,
        expect_workers=args.expect_workers,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """One process in the foreground: it replaces this one once its files are in place."""
    lab = Lab.from_files(args.config, args.architecture)
    load = load_options(args)
    # Options left at their defaults are no choice; any other is a mistake worth one line.
    if args.name != LOADGEN and load != LoadOptions(headless=False):
        raise BadInput(f"the load's options are for `failwhale serve {LOADGEN}`, not {args.name}")
    served = serve.plan(lab, args.name, args.architecture, load)
    serve.prepare(lab, args.name, load)
    if not load.headless and args.name == LOADGEN:
        say(f"Locust's web UI at {lab.lab.url('locust')}/ (user failwhale, password in {lab.ui_secret_path})")
    say(f"serving {served.name} ({served.where})")
    serve.run(served)
    return 0  # pragma: no cover - run() does not return


def cmd_halt(args: argparse.Namespace) -> int:
    """Kill switch: every fault gone, every process on its baseline architecture, within a second."""
    import asyncio

    from chaos.control import halt

    started = time.monotonic()
    answers = asyncio.run(halt(lab_control(args), deadline_s=args.deadline))
    took = time.monotonic() - started
    failed = [a for a in answers if not a.ok]
    removed = sum(a.body.get("removed", 0) for a in answers if a.ok)
    say(
        f"halted {len(answers) - len(failed)} of {len(answers)} processes in {took:.2f}s: "
        f"{removed} fault(s) removed, every reachable process on its baseline architecture, rollouts in progress stopped"
    )
    if failed:
        say(
            f"warning: after {args.deadline:g}s, no confirmation from {', '.join(f'{a.instance} ({a.body})' for a in failed)}; "
            "their faults still lapse by their TTL and their architecture changes by their lease"
        )
    return 1 if failed else 0


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

    control = lab_control(args)

    async def gather():
        return await asyncio.gather(
            control.each("GET", "/readyz"),
            control.each("GET", "/control/faults"),
            control.each("GET", "/control/architecture"),
        )

    ready, faults, archs = asyncio.run(gather())
    say(f"{'process':<15}{'ready':<8}{'version':<10}{'lease':<14}faults")
    for r, f, a in zip(ready, faults, archs, strict=True):
        version = r.body.get("version", "?") if isinstance(r.body, dict) else "?"
        lease = _lease_text(a.body if a.ok and isinstance(a.body, dict) else None)
        active = f.body.get("faults", []) if f.ok else []
        described = ", ".join(f"{x['kind']} ({x['expires_in_s']:.0f}s left)" for x in active) or "-"
        say(f"{r.instance:<15}{'yes' if r.ok else 'NO':<8}{version:<10}{lease:<14}{described}")
    return 0 if all(r.ok for r in ready) else 1

"""``failwhale rollout`` and ``rollback``: an architecture change by hand, in waves, under a guard and a lease."""

from __future__ import annotations

import argparse
import signal
import time
from typing import TYPE_CHECKING

from chaos.cli.common import lab_control, say
from chaos.errors import BadInput

if TYPE_CHECKING:
    from chaos.control import LabControl
    from chaos.lease import LeaseKeeper
    from chaos.rollout import RolloutResult
    from services.architecture import Architecture


def _rollout_target(args: argparse.Namespace, control: LabControl) -> Architecture:
    """The architecture file to roll out, if it runs the same processes as the lab (a rollout
    changes settings, not processes)."""
    from chaos.rollout import check_same_processes
    from configfiles.errors import ConfigError
    from services.architecture import load_architecture

    try:
        new = load_architecture(args.file)
    except ConfigError as e:
        raise BadInput(str(e)) from e
    check_same_processes(new, control.arch, str(args.file))
    return new


def cmd_rollout(args: argparse.Namespace) -> int:
    from chaos.lease import LeaseKeeper
    from chaos.rollout import plan_waves

    control = lab_control(args)
    new = _rollout_target(args, control)
    waves = plan_waves(new, args.waves)
    say(
        f"rolling out {new.version} in {len(waves)} wave(s), baking {args.bake:g}s between waves"
        + (f", guarded by: {args.guard}" if args.guard else ", unguarded")
        + ("; for good (--keep)" if args.keep else f"; held for at most {args.hold:g}s")
    )

    def terminate(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)  # kill (not -9) rolls back like Ctrl-C
    keeper = LeaseKeeper(control, lease_s=args.lease, say=say).start()
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
                say=say,
            )
        )
        if not result.rolled_back and not args.keep:
            say(
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
        say(f"rolled back after {result.completed_waves} of {result.total_waves} wave(s): {result.reason}")
        return 130 if interrupted else 1
    if result is not None and args.keep:
        say(f"{result.version} is on every process, for good: `failwhale rollback` or `failwhale halt` undoes it")
        return 130 if interrupted else 0
    # Interrupted mid-rollout, the rollout has undone its waves already; once more is harmless,
    # and covers an interruption between its end and this line.
    stuck = asyncio.run(rollback(control, keeper=keeper))
    if stuck:
        say(f"warning: {', '.join(stuck)} did not confirm the rollback; their leases lapse within {args.lease:g} s")
    if result is None:
        say("interrupted: rolled back")
        return 130
    say(f"rolled back {result.version}" + (" (interrupted)" if interrupted else f" after holding it {args.hold:g}s"))
    return 130 if interrupted else (1 if stuck else 0)


def cmd_rollback(args: argparse.Namespace) -> int:
    import asyncio

    from chaos.rollout import rollback

    stuck = asyncio.run(rollback(lab_control(args)))
    for name in stuck:
        say(f"warning: {name} did not answer")
    say("every process is back on its baseline architecture" if not stuck else "rollback incomplete")
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

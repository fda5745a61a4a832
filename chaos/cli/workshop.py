"""``failwhale workshop start``, ``sheet``, ``lever`` and ``end``: a game day for a room of people."""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chaos import records
from chaos.cli.common import Parser, lab_config, say
from chaos.cli.scenarios import write_reports
from chaos.errors import BadInput
from chaos.lab.supervisor import DASHBOARD
from chaos.workshop.levers import LEVERS, ArgSpec
from chaos.workshop.room import DEFAULT_ROOM_PORT, check_room, parse_room

if TYPE_CHECKING:
    from chaos.engine.progress import RunProgress
    from chaos.scenario import Scenario
    from chaos.workshop.game import Game
    from chaos.workshop.plan import Plan


END_WAIT_S = 180.0  # how long `workshop end` waits for the game's scorecard and postmortem


def add_lever_parsers(wsub: argparse._SubParsersAction, lab_config: argparse.ArgumentParser) -> None:
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
    who = Parser(add_help=False)
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


def cmd_workshop_start(args: argparse.Namespace) -> int:
    from chaos.scenario import load_scenario
    from chaos.workshop.plan import hidden, plan
    from chaos.workshop.scorecard import scorecard_text

    room = parse_room(args.room, DEFAULT_ROOM_PORT) if args.room else None  # a bad address: nothing starts
    if room is not None:
        check_room(room)  # an address of another machine, or one in use: one line, before anything
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
    lab = lab_config(args)
    say(f"workshop (seed {p.seed})")
    if DASHBOARD in lab.ports:
        say(f"  dashboard   {lab.url(DASHBOARD)}/   levers: failwhale workshop lever --help")
    from chaos.engine.progress import for_output

    progress = for_output()  # one live status area in a terminal: the room's link stays on screen
    try:
        game = _game(args, played, speed, p, progress, room)
        code = game.run()
    finally:
        progress.close()
    run_dir = game.runner.run_dir
    if (run_dir / "summary.json").exists():
        write_reports(args.out, [run_dir])
        card = records.read(run_dir / "scorecard.json", records.Scorecard)
        say(scorecard_text(card))
        say(f"postmortem draft: {run_dir / 'postmortem.html'} (and postmortem.md)")
    return code


def _game(
    args: argparse.Namespace,
    played: Scenario,
    speed: float,
    p: Plan,
    progress: RunProgress,
    room: tuple[str, int] | None,
) -> Game:
    """The game as the command line asked for it (its checks may refuse it before anything starts)."""
    from chaos.workshop.game import Game
    from chaos.workshop.plan import sheet

    return Game(
        played,
        "workshop",
        args.out,
        speed,
        args.config,
        say=progress.say,
        quick=args.quick,
        scale=args.scale,
        attach=args.attach,
        progress=progress,
        room=room,
        plan=p,
        limit_s=args.limit,
        sheet_text=sheet(p, played, speed),
    )


def cmd_workshop_sheet(args: argparse.Namespace) -> int:
    from chaos.workshop.client import room_link
    from chaos.workshop.room import SHEET_FILE, workshop_dir

    lab = lab_config(args)
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
    answer = send(lab_config(args), lever.name, args.who, pulled, timeout_s=lever.answer_within_s)
    at = answer.at
    say(f"{lever.name} by {args.who}" + (f" at T+{at:g}s" if at is not None else "") + f": {answer.note}")
    return 0


def cmd_workshop_end(args: argparse.Namespace) -> int:
    from chaos.workshop.client import send
    from chaos.workshop.scorecard import scorecard_text

    answer = send(lab_config(args), "end", args.who)
    if answer.run_dir is None:
        raise BadInput("the workshop did not say where its run folder is: see the workshop's terminal")
    run_dir = Path(answer.run_dir)
    say(f"{answer.note}: rolling back, measuring and writing the postmortem (up to {END_WAIT_S:.0f}s)")
    card_path, last = run_dir / "scorecard.json", run_dir / "postmortem.html"  # the postmortem is written last
    deadline = time.monotonic() + END_WAIT_S
    while not last.exists():
        if time.monotonic() > deadline:
            raise BadInput(f"no postmortem in {run_dir} after {END_WAIT_S:.0f}s: see the workshop's terminal")
        time.sleep(1)
    say(scorecard_text(records.read(card_path, records.Scorecard)))
    say(f"postmortem draft: {run_dir / 'postmortem.html'} (and postmortem.md)")
    return 0

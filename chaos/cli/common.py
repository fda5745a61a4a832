"""What every failwhale command shares: one-line errors for command-line mistakes, the lab
config and control planes it acts on, and argument types whose errors say what is allowed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from chaos.errors import BadInput
from chaos.lab.supervisor import Lab

if TYPE_CHECKING:
    pass


class Parser(argparse.ArgumentParser):
    """Command-line mistakes are one ``error:`` line and exit code 2, like every other bad input."""

    def error(self, message: str):
        raise BadInput(f"{self.prog}: {message} (see {self.prog} --help)")


def say(msg: str) -> None:
    print(msg, flush=True)


def ranged(kind, low: float, high: float | None = None):
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


def scale_arg(text: str) -> float:
    """--scale: above 0 (0 would mean no users and no capacity) and at most 100, as a scenario's load.scale."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is out of range: use a number above 0 and at most 100")
    return value


SCALE_HELP = (
    "K times the users, and every rate limit and concurrency capacity the run uses K times too; "
    "timeouts, lifetimes and think times stay (default: the scenario's load.scale, usually 1)."
)


def lab_config(args: argparse.Namespace):
    return Lab.from_files(args.config).lab


def lab_control(args: argparse.Namespace):
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

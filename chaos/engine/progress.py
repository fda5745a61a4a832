"""How a run shows how it is going: one live status area in a terminal, plain lines anywhere else.

A run reads its progress every two seconds as a :class:`Tick` (scenario clock, phase, how web
and app users are doing). In a terminal, :class:`LiveProgress` keeps one area up to date with
rich: a bar for the catalog (``make scenarios``), one for the scenario clock with its phase, and
the journeys served; every message still scrolls above it. Without a terminal (CI, a pipe, a
file), :class:`PlainProgress` prints today's lines, one per tick, so logs stay greppable.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text


@dataclass(frozen=True)
class Tick:
    """One reading of a run in progress."""

    scenario_s: float  # scenario time now
    duration_s: float  # the scenario's length, in scenario time
    left_s: float  # wall seconds until the timeline ends
    phase: str  # the phase now, "-" between phases
    web: float | None  # share of web journeys not failed over the last 15 s (None: no journeys)
    app: float | None
    next: str  # what the run does next
    read: bool = True  # False: Prometheus did not answer in time, so no shares at all

    def share(self, value: float | None) -> str:
        return "  ?" if not self.read else "  -" if value is None else f"{100 * value:3.0f}%"

    def line(self) -> str:
        return (
            f"[{self.phase:<10}] {self.scenario_s:6.0f}s of {self.duration_s:.0f}s (scenario time), "
            f"{self.left_s:4.0f}s left | journeys not failed: web {self.share(self.web)}  app {self.share(self.app)}"
            f" | next: {self.next}"
        )


class RunProgress(Protocol):
    """What a runner and the catalog tell whoever watches."""

    def say(self, message: str) -> None: ...

    def catalog(self, names: list[str]) -> None: ...

    def scenario(self, name: str) -> None: ...

    def played(self, name: str) -> None: ...

    def tick(self, tick: Tick) -> None: ...

    def close(self) -> None: ...


class PlainProgress:
    """Plain lines: every message, and one line per tick."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def say(self, message: str) -> None:
        print(message, file=self.stream or sys.stdout, flush=True)

    def catalog(self, names: list[str]) -> None:
        pass  # the catalog's own "=== i/N name ===" lines say it

    def scenario(self, name: str) -> None:
        pass

    def played(self, name: str) -> None:
        pass

    def tick(self, tick: Tick) -> None:
        self.say(tick.line())

    def close(self) -> None:
        pass


class LiveProgress:
    """One status area that updates in place, messages scrolling above it."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.bars = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[figure]:>18}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.users = Text("")
        self.played_count = 0
        # What the run writes to stderr shows above the area, unless stderr goes somewhere else (2>file).
        self.live = Live(
            Group(self.bars, self.users),
            console=self.console,
            refresh_per_second=4,
            transient=False,
            redirect_stderr=sys.stderr.isatty(),
        )
        self.catalog_task: TaskID | None = None
        self.scenario_task: TaskID | None = None
        self.names: list[str] = []
        self.live.start()

    def say(self, message: str) -> None:
        # Events start with a blank line that sets them apart from the tick lines of plain output;
        # here the ticks are drawn in the area below, and the blank lines would only spread them out.
        self.console.print(message.lstrip("\n"), markup=False, highlight=False, soft_wrap=True)

    def catalog(self, names: list[str]) -> None:
        self.names = list(names)
        self.catalog_task = self.bars.add_task("catalog", total=len(names), figure=f"0 of {len(names)}")

    def scenario(self, name: str) -> None:
        if self.catalog_task is not None:
            self.bars.update(self.catalog_task, description=f"catalog: {name}")
        if self.scenario_task is not None:
            self.bars.remove_task(self.scenario_task)
        self.scenario_task = self.bars.add_task(f"{name}: starting", total=None, figure="")
        self.users.plain = ""

    def played(self, name: str) -> None:
        """A scenario of the catalog ran to its end (an interrupted one is not played)."""
        self.played_count += 1
        if self.catalog_task is not None:
            done = self.played_count
            self.bars.update(self.catalog_task, completed=done, figure=f"{done} of {len(self.names)} done")

    def tick(self, tick: Tick) -> None:
        if self.scenario_task is None:
            self.scenario_task = self.bars.add_task("scenario", total=None, figure="")
        self.bars.update(
            self.scenario_task,
            total=tick.duration_s,
            completed=min(tick.scenario_s, tick.duration_s),
            description=f"phase {tick.phase}",
            figure=f"{tick.scenario_s:.0f}s of {tick.duration_s:.0f}s",
        )
        self.users.plain = (
            f"journeys not failed now: web {tick.share(tick.web)}   app {tick.share(tick.app)}   next: {tick.next}"
        )

    def close(self) -> None:
        self.live.stop()


def for_output(stream: IO[str] | None = None) -> RunProgress:
    """Live progress when ``stream`` (default stdout) is a terminal, plain lines otherwise."""
    stream = stream or sys.stdout
    if stream.isatty():
        return LiveProgress(Console(file=stream))
    return PlainProgress(stream)

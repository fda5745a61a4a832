"""What a workshop will play, all of it from the seed: the scenario, the quiet lead-in before its
change, the hidden copy the runner plays, and the facilitator's private sheet.

The same seed picks the same scenario with the same lead-in, so two rooms can play the same game.
"""

from __future__ import annotations

import functools
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from chaos.scenario import CATALOG, Rollback, Scenario, load_scenario
from chaos.workshop.room import WorkshopError

LEAD_IN_S = (10, 40)  # scenario seconds of an ordinary evening before the change


def catalog() -> list[Path]:
    """The catalog's scenarios that say how to run them as a workshop, by name."""
    return list(_workshops(tuple((p, p.stat().st_mtime_ns) for p in sorted(CATALOG.glob("*.yaml")))))


@functools.lru_cache(maxsize=4)
def _workshops(files: tuple[tuple[Path, int], ...]) -> tuple[Path, ...]:
    # Loading a scenario validates it and its architectures (tens of ms): once per version of the files.
    return tuple(p for p, _ in files if load_scenario(p).workshop is not None)


@dataclass(frozen=True)
class Plan:
    """What a workshop will play: everything here follows from the seed (and a chosen name)."""

    path: Path
    seed: int
    lead_in_s: float

    @property
    def name(self) -> str:
        return self.path.stem


def plan(seed: int | None = None, name: str | None = None) -> Plan:
    """The scenario and lead-in for a seed; a named scenario still takes its lead-in from the seed."""
    if seed is None:
        seed = secrets.randbelow(10**6)
    rng = random.Random(seed)
    choices = catalog()
    if name is None:
        path = rng.choice(choices)
    else:
        found = next((p for p in choices if p.stem == name), None)
        if found is None:
            raise WorkshopError(f"no workshop scenario named {name!r}; there are: {', '.join(p.stem for p in choices)}")
        rng.random()  # the same draws as a random pick, so the lead-in depends on the seed alone
        path = found
    return Plan(path, seed, float(round(rng.uniform(*LEAD_IN_S))))


def hidden(scenario: Scenario, lead_in_s: float) -> Scenario:
    """The scenario as a workshop plays it: later by the lead-in, with no expectations to judge."""
    steps = [s.model_copy(update={"at": s.at + lead_in_s}) for s in scenario.timeline]
    phases = [p.model_copy(update={"start": p.start + lead_in_s, "end": p.end + lead_in_s}) for p in scenario.phases]
    copy = scenario.model_copy(
        update={
            "timeline": steps,
            "phases": phases,
            "duration": scenario.duration + lead_in_s,
            "expectations": [],
            "compare": None,
        }
    )
    copy._source = scenario.source
    return copy


def _clock(scenario_s: float, speed: float) -> str:
    wall = scenario_s / speed
    return f"T+{scenario_s:5.0f}s (about {int(wall // 60):d}:{int(wall % 60):02d} after the start)"


def sheet(p: Plan, scenario: Scenario, speed: float) -> str:
    """The facilitator's private sheet, as Markdown."""
    w = scenario.workshop
    assert w is not None
    out = [
        f"# Facilitator sheet (seed {p.seed})",
        "",
        "Keep this to yourself until the debrief.",
        "",
        f"## The scenario: {scenario.title}",
        "",
        scenario.description.strip(),
        "",
        f"It teaches: {scenario.teaches.strip()}",
        "",
        f"## Timeline (speed {speed:g}: one scenario second is {1 / speed:g} wall seconds)",
        "",
    ]
    for step in scenario.timeline:
        what = step.name or getattr(step, "text", "") or step.action
        if isinstance(step, Rollback):
            what += " (left to the participants: this is the fix)"
        out.append(f"- {_clock(step.at, speed)}: {step.action}: {what}")
    out += [
        "",
        "## What to look for",
        "",
        *(f"- {x}" for x in w.look_for),
        "",
        "## Hints, gentlest first",
        "",
        *(f"{i}. {h}" for i, h in enumerate(w.hints, 1)),
        "",
        "## The fix",
        "",
        f"`failwhale workshop lever {w.fix_command}`: web and app journeys should hold again within "
        f"{w.recovers_within:g} scenario seconds ({w.recovers_within / speed:g} wall seconds).",
        "",
        "## Debrief questions",
        "",
        *(f"- {q}" for q in w.debrief),
        "",
        "## The incident it replays",
        "",
        *(f"- {f}" for f in scenario.incident.facts),
        "",
        "End the game with `failwhale workshop end`; the scorecard and a postmortem draft follow.",
        "",
    ]
    return "\n".join(out)

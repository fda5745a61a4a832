"""A workshop game: a scenario run that hides itself, leaves its fix to the participants and ends on cue.

``failwhale workshop start`` starts the lab, its load and the dashboard, and plays a scenario
without naming it (:mod:`chaos.workshop.plan`): its change happens after a quiet lead-in of a
length only the seed knows, and its own rollback steps are left out, because finding the fix is
the participants' job. Once the lab is up the game opens the levers (:mod:`chaos.workshop.server`)
and writes the facilitator's sheet and the two tokens (:mod:`chaos.workshop.room`). It ends when
the facilitator says so (``failwhale workshop end``) or its time is up; the run folder then holds
the scorecard (:mod:`chaos.workshop.scorecard`) and a postmortem draft (:mod:`chaos.workshop.postmortem`).

The game does not subclass the runner: it is the run's hooks (``chaos/engine/hooks.py``), and
its levers act on the run it holds.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from chaos import records
from chaos.engine.hooks import PlayStep, StepResult
from chaos.engine.progress import RunProgress
from chaos.engine.runner import Runner
from chaos.errors import LabError
from chaos.lab.supervisor import DASHBOARD, check_port, write_private
from chaos.records import LeverEntry, Series, ServedAfter, StepDetail, Summary, WorkshopRecord
from chaos.scenario import Inject, Kill, Phase, Rollback, Rollout, Scenario, Step, load_scenario
from chaos.workshop.actions import Levers
from chaos.workshop.plan import Plan
from chaos.workshop.room import (
    FACILITATOR_TOKEN_FILE,
    PORT_NAME,
    SHEET_FILE,
    TOKEN_FILE,
    qr_text,
    require_port,
    room_url,
    workshop_dir,
)
from chaos.workshop.scorecard import actual_change_at, fix_pulled, game_end_at, scorecard, scorecard_text
from chaos.workshop.server import LeverServer, Site, lever_app, room_app

DEFAULT_LIMIT_S = 1800.0  # a workshop ends by itself after this many wall seconds
SERVED_WINDOW_S = 15.0  # the rate window of client:failwhale_journeys_served:ratio_rate15s
# The journal's note beside each way a step goes unplayed (StepEntry.unplayed says which, for code).
UNPLAYED_NOTES = {
    "left_to_participants": "left to the participants",
    "after_the_game": "not played: the workshop had ended",
    "after_the_fix": "not played: the room's fix had ended it",
}


class Game:
    """A workshop: a scenario run that hides itself, leaves its fix to the participants and ends on cue.

    The game does not subclass the runner: it is the run's hooks (``chaos/engine/hooks.py``),
    and its levers act on the run it holds."""

    def __init__(
        self,
        scenario: Scenario,
        name: str,
        out: Path,
        speed: float,
        lab_config: Path | None = None,
        *,
        plan: Plan,
        limit_s: float = DEFAULT_LIMIT_S,
        sheet_text: str = "",
        say: Callable[[str], None] = print,
        quick: bool = False,
        scale: float | None = None,
        attach: bool = False,
        room: tuple[str, int] | None = None,
        progress: RunProgress | None = None,
    ) -> None:
        self.plan = plan
        # Where participants' own browsers reach the dashboard and the levers (an explicit opt-in).
        self.room = room
        self.sheet_text = sheet_text
        self.limit_s = limit_s
        self.levers = Levers(self)
        self.rolling_out: str | None = None  # the name of the rollout step playing now
        self.rollout_paused = False
        self.rollout_stopped = False
        self.server: LeverServer | None = None
        self._ends_at = float("inf")  # wall clock; set once the lab is up
        self.summary: Summary | None = None  # the game's, once measured: the postmortem is written from it
        self.runner = Runner(
            scenario,
            name,
            out,
            speed,
            lab_config,
            say=say,
            attach=attach,
            quick=quick,
            scale=scale,
            hooks=self,
            progress=progress,
        )
        if attach:
            # A fresh lab checks every port as it starts; an attached game opens only the levers'.
            require_port(self.runner.lab.lab)
            check_port(self.runner.lab.lab, PORT_NAME)

    def run(self) -> int:
        """Play the game; the run's exit code."""
        return self.runner.run()

    def say(self, text: str) -> None:
        self.runner.say(text)

    # ---- the run's hooks ---------------------------------------------------------------------

    def over(self) -> bool:
        """Has the game ended (by `workshop end`, or because its time is up)?"""
        # `stopping` is set when the run winds down, Ctrl-C included.
        return self.levers.ended.is_set() or time.time() >= self._ends_at or self.runner.stopping.is_set()

    def ends_at(self) -> float:
        return self._ends_at

    def load_s(self) -> float | None:
        return self.limit_s  # the load lasts as long as the game may

    def shown_phase(self, name: str) -> str:
        # "baseline" then "outage" would tell the room what is coming, and when.
        return "game" if name != "-" else name

    def focus_phase(self, planned: str) -> str:
        # The hidden copy has no expectations to name it: the scenario's own file does.
        for e in load_scenario(self.plan.path).expectations:
            if e.measure and e.measure.startswith(("web.", "app.")):
                return e.phase
        return planned

    def needs_app_user(self, planned: bool) -> bool:
        return True  # the facilitator may ask for "works for me" at any time

    def rollout_hold(self) -> Literal["go", "wait", "stop"]:
        if self.over() or self.rollout_stopped:
            return "stop"
        return "wait" if self.rollout_paused else "go"

    def lab_ready(self) -> None:
        """Open the levers, and write the tokens and the facilitator's sheet."""
        lab = self.runner.lab.lab
        require_port(lab)
        self._ends_at = time.time() + self.runner.warmup_s + self.limit_s
        token, facilitator_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        dashboard = lab.url(DASHBOARD) + "/" if DASHBOARD in lab.ports else ""
        sites = [
            Site(
                lever_app(
                    self.levers,
                    token,
                    facilitator_token,
                    dashboard,
                    address=(lab.host_of(PORT_NAME), lab.port(PORT_NAME)),
                ),
                lab.listen_host(PORT_NAME),
                lab.port(PORT_NAME),
            )
        ]
        if self.room is not None:
            sites.append(Site(room_app(self.levers, token, lab.url("prometheus"), self.room), *self.room, "the room"))
        self.server = LeverServer(*sites)
        # Written only now that this game holds the lab's ports: a second start, which cannot,
        # never overwrites the running game's sheet or token.
        if self.sheet_text:
            sheet = write_private(workshop_dir(lab) / SHEET_FILE, self.sheet_text)
            self.say(f"the facilitator's sheet is {sheet} (or: failwhale workshop sheet)")
        write_private(workshop_dir(lab) / FACILITATOR_TOKEN_FILE, facilitator_token + "\n")
        token_path = write_private(workshop_dir(lab) / TOKEN_FILE, token + "\n")
        self.say(
            f"levers open on {lab.url(PORT_NAME)}/ (token in {token_path}, mode 0600; "
            "`failwhale workshop sheet` prints the room's link)"
        )
        if self.room is not None:
            link = room_url(self.room, token)
            self.say(f"the room: participants open {link} (or scan the code); it holds the room's token")
            self.say(qr_text(link))

    def play_step(self, step: Step, play: PlayStep) -> StepResult:
        if isinstance(step, Rollback):
            # "skipped", not "ok": the dashboard marks rollback steps that ran, and this one did not.
            unplayed: Literal["left_to_participants"] = "left_to_participants"
            return "skipped", StepDetail(note=UNPLAYED_NOTES[unplayed], unplayed=unplayed)
        if self.over():
            return "ok", StepDetail(note=UNPLAYED_NOTES["after_the_game"], unplayed="after_the_game")
        if isinstance(step, (Kill, Inject)) and self.fixed():
            return "skipped", StepDetail(note=UNPLAYED_NOTES["after_the_fix"], unplayed="after_the_fix")
        if isinstance(step, Rollout):
            # Reset first: a rollback pulled as the rollout starts must still stop it.
            self.rollout_stopped = False
            self.rolling_out = step.name or step.action
            try:
                return play(step)
            finally:
                self.rolling_out = None
        return play(step)

    def fixed(self) -> bool:
        """Has the room pulled the scenario's fix, when the fix also ends the timeline's trouble?"""
        w = self.runner.scenario.workshop
        if w is None or not w.fix_ends_timeline:
            return False
        return fix_pulled(self.runner.journal.entries, w, change_at=0.0) is not None

    def until_end(self, t0: float, wait: Callable[[], None]) -> None:
        """The game goes on after the timeline, until the facilitator ends it or its time is up."""
        if not self.over():
            self.say(
                f"\nthe timeline has played; the game goes on until `failwhale workshop end` "
                f"(or {max(0.0, self._ends_at - time.time()) / 60:.0f} more minutes)"
            )
        self.runner.sleep_until(self._ends_at, "the game", t0)
        if not self.levers.ended.is_set():
            self.levers.end("the clock", f"time is up ({self.limit_s / 60:g} minutes)")
            self.say(f"\ntime is up ({self.limit_s / 60:g} minutes): the game ends")

    def as_played(self, t0: float, planned: Scenario) -> Scenario:
        """The scenario as this game really went, for the figures: from the start to the game's
        end, in phases cut where the change really came and where the fix was pulled (not where
        the scenario planned them: a paused rollout comes later, and the room picks the fix's time)."""
        entries, speed = self.runner.journal.entries, self.runner.speed
        end_at = max(1.0, game_end_at(entries, (time.time() - t0) * speed))
        change = actual_change_at(entries, t0, speed)
        pulled = fix_pulled(entries, planned.workshop, change, end_at)
        fix = None if pulled is None else pulled.at
        cuts = [
            ("before", 0.0),
            *([(self.focus_phase(planned.phases[0].name), change)] if change is not None and change < end_at else []),
            *([("after", fix)] if fix is not None else []),
            ("", end_at),
        ]
        phases = [
            Phase(name=name, start=round(start, 1), end=round(end, 1))
            for (name, start), (_next, end) in itertools.pairwise(cuts)
            if end - start >= 1
        ]
        played = planned.model_copy(update={"phases": phases, "duration": end_at})
        played._source = planned.source
        return played

    def lever_effects(self, t0: float) -> None:
        """Beside each lever: how many web and app journeys were served a while after it (the
        scenario's recovery bound and the ratio's window, or until the next lever), so a wrong
        lever shows as one."""
        from chaos.promql import query

        journal, speed, scenario = self.runner.journal, self.runner.speed, self.runner.scenario
        levers = [
            (e.at, e) for e in journal.entries if isinstance(e, LeverEntry) and e.at is not None and e.lever != "end"
        ]
        bound = scenario.workshop.recovers_within if scenario.workshop else 60.0
        window = SERVED_WINDOW_S * speed  # the served ratio is a 15 s rate, in scenario seconds
        end_at = game_end_at(journal.entries, (time.time() - t0) * speed)
        for i, (pulled_at, e) in enumerate(levers):
            later = levers[i + 1][0] if i + 1 < len(levers) else float("inf")
            # Read once the window is past the bound, but before the next lever or the end's cleanup.
            at = min(pulled_at + bound + window, later, end_at)
            if at < pulled_at + window:  # a window that starts before the lever would show the time before it
                e.served_after = ServedAfter(at=None, too_soon=True)
                continue
            result = query(
                self.runner.url("prometheus"), "client:failwhale_journeys_served:ratio_rate15s", t0 + at / speed
            )
            served = {s["metric"].get("client"): round(float(s["value"][1]), 3) for s in result}
            e.served_after = ServedAfter(at=round(at, 1), web=served.get("web"), app=served.get("app"))
        journal.save()  # the journal keeps what each lever did, as the scorecard does

    def summarised(self, summary: Summary) -> None:
        """What each lever did (measured while the lab's Prometheus still has it), then the game's
        scorecard, in the summary and beside it (scorecard.json)."""
        if summary.started is not None:
            try:
                self.lever_effects(summary.started)
            except LabError as e:
                self.say(f"warning: could not measure what each lever did: {e}")
        card = scorecard(summary, self.runner.journal.entries, self.runner.scenario, self.runner.speed)
        summary.workshop = WorkshopRecord(seed=self.plan.seed, lead_in_s=self.plan.lead_in_s, scorecard=card)
        records.write(self.runner.run_dir / "scorecard.json", card)
        self.summary = summary

    def closed(self) -> None:
        """Close the levers and remove their tokens; write the postmortem draft, last, once summary.json is written."""
        if self.server is not None:
            self.server.close()
            for name in (TOKEN_FILE, FACILITATOR_TOKEN_FILE):
                (workshop_dir(self.runner.lab.lab) / name).unlink(missing_ok=True)
        summary = self.summary
        if summary is None or summary.workshop is None:
            return  # the game never got as far as a summary
        run_dir = self.runner.run_dir
        series_path = run_dir / "series.json"
        series = records.read(series_path, Series) if series_path.exists() else None
        # Imported here, not at the top: it brings matplotlib, which every `failwhale` command
        # (the levers included) would otherwise load at start-up for nothing.
        from chaos.workshop import postmortem

        card = summary.workshop.scorecard
        journal = self.runner.journal.entries
        postmortem.write(run_dir, summary, series, journal, self.runner.scenario, card, scorecard_text(card))

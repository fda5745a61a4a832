"""The points where something else may shape a run without subclassing the runner.

A plain ``failwhale run`` uses :class:`PlainRun`. A workshop (``chaos.workshop.game``) passes
its own hooks: it hides the phases, keeps the load going until the room ends the game, leaves
the fix to the participants, pauses rollouts on a lever, measures the game as it really went,
and adds its scorecard to the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from chaos.records import StepDetail, Summary
from chaos.scenario import Scenario, Step

Hold = Literal["go", "wait", "stop"]
StepResult = tuple[str, StepDetail]  # the step's outcome, and what its journal entry keeps
PlayStep = Callable[[Step], StepResult]


class RunHooks(Protocol):
    """What a run asks of whoever started it. Every method has a plain answer in :class:`PlainRun`."""

    def over(self) -> bool:
        """Whether the run should stop waiting and play nothing more (a workshop that has ended)."""
        ...

    def ends_at(self) -> float:
        """Wall clock by which every wait ends (infinity: none)."""
        ...

    def load_s(self) -> float | None:
        """Wall seconds the load runs after its warm-up; None: the scenario's length."""
        ...

    def shown_phase(self, name: str) -> str:
        """A phase's name as the progress line and Prometheus show it."""
        ...

    def focus_phase(self, planned: str) -> str:
        """The phase the headline figures come from (``planned``: the scenario's own choice)."""
        ...

    def needs_app_user(self, planned: bool) -> bool:
        """Whether the works-for-me app user signs in before the timeline."""
        ...

    def rollout_hold(self) -> Hold:
        """Asked before each rollout wave: go on, wait, or stop and put back what moved."""
        ...

    def lab_ready(self) -> None:
        """The lab runs and answers its control plane (a workshop opens its levers)."""
        ...

    def play_step(self, step: Step, play: PlayStep) -> StepResult:
        """Play a timeline step: usually ``play(step)``, or say why not."""
        ...

    def until_end(self, t0: float, wait: Callable[[], None]) -> None:
        """After the last step: ``wait()`` waits for the scenario's end."""
        ...

    def as_played(self, t0: float, planned: Scenario) -> Scenario:
        """The scenario whose phases and expectations the figures are measured against."""
        ...

    def summarised(self, summary: Summary) -> None:
        """The summary is measured and about to be written: add to it, write files beside it."""
        ...

    def closed(self) -> None:
        """The run has stopped everything it started."""
        ...


class PlainRun:
    """The hooks of a plain run: nothing shaped, nothing added."""

    def over(self) -> bool:
        return False

    def ends_at(self) -> float:
        return float("inf")

    def load_s(self) -> float | None:
        return None

    def shown_phase(self, name: str) -> str:
        return name

    def focus_phase(self, planned: str) -> str:
        return planned

    def needs_app_user(self, planned: bool) -> bool:
        return planned

    def rollout_hold(self) -> Hold:
        return "go"

    def lab_ready(self) -> None:
        pass

    def play_step(self, step: Step, play: PlayStep) -> StepResult:
        return play(step)

    def until_end(self, t0: float, wait: Callable[[], None]) -> None:
        wait()

    def as_played(self, t0: float, planned: Scenario) -> Scenario:
        return planned

    def summarised(self, summary: Summary) -> None:
        pass

    def closed(self) -> None:
        pass

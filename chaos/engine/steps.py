"""One function per kind of timeline step: what it does to the lab, and what its journal entry keeps.

Each takes the run it plays in and the step, and returns the step's outcome with a
:class:`chaos.records.StepDetail`; a step that cannot be played raises :class:`ChaosError`
(the run then deviates, and still rolls back). To add a step kind: its model in
``chaos/scenario.py``, its function here, and its entry in :data:`PLAYERS`.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chaos.errors import ChaosError
from chaos.probe import describe, fresh_web_visit
from chaos.records import AppUserView, StepDetail, WorksForMeProbe
from chaos.rollout import plan_waves, rollback, rollout
from chaos.scenario import Inject, Kill, Note, Pause, Rollback, Rollout, Step, WorksForMe
from configfiles.errors import ConfigError
from services.architecture import load_architecture

if TYPE_CHECKING:
    from chaos.engine.hooks import StepResult
    from chaos.engine.runner import Runner


def play(run: Runner, step: Step) -> StepResult:
    """Play one step of the timeline."""
    player = PLAYERS.get(type(step))
    if player is None:
        raise ChaosError(f"unknown step {step!r}")
    return player(run, step)


def note(run: Runner, step: Note) -> StepResult:
    return "ok", StepDetail(note=step.text)


def pause(run: Runner, step: Pause) -> StepResult:
    time.sleep(run.wall(step.seconds))
    return "ok", StepDetail()


def inject(run: Runner, step: Inject) -> StepResult:
    """Send the step's faults (scaled with the run) to its targets; each lapses by its TTL, in wall time."""
    # kind has no default, so it is always in the dump.
    faults = [
        f.model_dump(exclude_defaults=True) | {"ttl_s": max(1.0, run.wall(f.ttl_s))}
        for f in step.scaled(run.scale_k).faults
    ]
    answers = asyncio.run(run.lab_control.each("POST", "/control/faults", json={"faults": faults}, only=step.target))
    bad = [f"{a.instance}: {a.body}" for a in answers if not a.ok]
    if bad:
        raise ChaosError(f"faults refused: {'; '.join(bad)}")
    return "ok", StepDetail(
        note=f"{len(faults)} fault(s) on {', '.join(step.target)}", ttl_s=max(f.ttl_s for f in step.faults)
    )


def roll_out(run: Runner, step: Rollout) -> StepResult:
    """Move the lab to another architecture in waves, under the step's guard; "rolled_back" if it broke off."""
    if run.scenario.source is None:
        raise ChaosError("a rollout needs the scenario's file, to find its architecture file beside it")
    path = (run.scenario.source.parent / step.architecture).resolve()
    try:
        new = load_architecture(path).scaled(run.scale_k)
    except ConfigError as e:
        raise ChaosError(str(e)) from e
    waves = plan_waves(new, step.waves)
    result = asyncio.run(
        rollout(
            run.lab_control,
            new,
            waves,
            bake_s=run.wall(step.bake),
            guard=step.guard,
            guard_every_s=max(0.25, run.wall(step.guard_every)),
            prometheus_url=run.url("prometheus"),
            say=lambda m: run.say("\n" + m),
            hold=run.hooks.rollout_hold,
            lock=run.arch_lock,
            keeper=run.keeper,
        )
    )
    return "rolled_back" if result.rolled_back else "ok", StepDetail(
        note=result.reason or f"{new.version} on {result.completed_waves}/{result.total_waves} waves",
        waves=waves,
        completed_waves=result.completed_waves,
        wave_times=result.wave_times,
        rolled_back_at=result.rolled_back_at,
        guard_breached=result.guard_breached,
    )


def works_for_me(run: Runner, step: WorksForMe) -> StepResult:
    """The signed-in app user and a fresh web visitor look at the same moment."""
    app = (
        run.app_user.look()
        if run.app_user
        else AppUserView(sees="error", fresh=False, refresh_error="could not sign in before the timeline")
    )
    web = fresh_web_visit(run.url("web"))
    run.probes.append(WorksForMeProbe(at=step.at, app_user=app, web_visit=web))
    return "ok", StepDetail(note=describe(app, web), app_user=app, web_visit=web)


def roll_back(run: Runner, step: Rollback) -> StepResult:
    """Every process back on the architecture it started with."""
    stuck = asyncio.run(rollback(run.lab_control, keeper=run.keeper))
    if stuck:
        raise ChaosError(f"no answer from {', '.join(stuck)}")
    return "ok", StepDetail()


def kill(run: Runner, step: Kill) -> StepResult:
    """SIGKILL one process of the lab, and start it again after the step's delay if it has one."""
    if run.lab is None or step.target not in run.lab.procs:
        raise ChaosError(f"no process named {step.target}")
    run.lab.stop_instance(step.target, signal.SIGKILL)
    if step.restart_after is not None:
        run.restart_later(step.target, time.time() + run.wall(step.restart_after))
    return "ok", StepDetail(note=f"killed {step.target}")


PLAYERS: dict[type, Callable[[Runner, Any], StepResult]] = {
    Note: note,
    Pause: pause,
    Inject: inject,
    Rollout: roll_out,
    WorksForMe: works_for_me,
    Rollback: roll_back,
    Kill: kill,
}

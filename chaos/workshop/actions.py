"""What each lever does to the running lab, and the journal entry of every pull.

Each lever acts on the lab for real: a rollback moves every process back to its baseline;
scaling the timeline service really gives it more capacity, which helps only if capacity was
the problem; scaling any other backend changes nothing users see, which is the real consequence
of scaling the wrong one. What a lever takes is its model in :mod:`chaos.workshop.levers`, checked
before it gets here; what the lab refuses (a replica it does not have, a change mid-rollout) is
journaled as refused.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaos.control import LabControl
from chaos.engine.runner import Runner
from chaos.errors import LabError
from chaos.probe import describe, fresh_web_visit
from chaos.records import LeverEntry, WorksForMeProbe
from chaos.rollout import holding, rollback
from chaos.series import alert_name
from chaos.workshop.change import Edited, change_architecture
from chaos.workshop.levers import (
    LEVERS,
    DeclareArgs,
    DrainArgs,
    FlushCacheArgs,
    LeverAnswer,
    LeverArgs,
    RateLimitArgs,
    RestartArgs,
    ScaleArgs,
    StatusArgs,
    WarmCacheArgs,
    spec,
)
from chaos.workshop.room import LabStarting, WorkshopError
from services.architecture.model import Architecture, AuthBackend, TimelineBackend, scaled_count

if TYPE_CHECKING:
    from chaos.workshop.game import Game


@dataclass(frozen=True)
class Acked:
    """An ack's note, and the alerts that were firing (only an ack of a page counts as detection)."""

    note: str
    firing: list[str]


Action = Callable[[LabControl, Any], Awaitable[str | Acked]]


class Levers:
    """The participants' levers, acting on the lab the runner plays; every pull is journaled."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.ended = threading.Event()
        # Each lever of the table, and what it does; every one takes its own model of LEVERS.
        self.actions: dict[str, Action] = {
            "declare": self._declare,
            "ack": self._ack,
            "pause": self._pause,
            "resume": self._resume,
            "rollback": self._rollback,
            "scale": self._scale,
            "rate-limit": self._rate_limit,
            "flush-cache": self._flush_cache,
            "warm-cache": self._warm_cache,
            "drain": self._drain,
            "restart": self._restart,
            "status": self._status,
            "works-for-me": self._works_for_me,
        }
        assert list(self.actions) == list(LEVERS), "every lever in the table, and only those, acts"

    @property
    def runner(self) -> Runner:
        """The run the game plays, which the levers act on."""
        return self.game.runner

    def scenario_now(self) -> float | None:
        """Scenario seconds since the game's clock started; None before it has."""
        t0 = self.runner.t0
        return None if t0 is None else round((time.time() - t0) * self.runner.speed, 1)

    def url(self, name: str) -> str:
        """A lab process's URL (levers act only once the lab is up)."""
        if self.runner.control is None:
            raise LabStarting()
        return self.runner.url(name)

    def end(self, who: str, note: str) -> None:
        """End the game (the facilitator's call, or the clock's), journaled as the last lever."""
        entry = self.runner.journal.start(LeverEntry(lever="end", who=who, at=self.scenario_now()))
        self.runner.journal.end(entry, "ok", note=note)
        self.ended.set()

    async def pull(self, lever: str, who: str, args: LeverArgs | None = None) -> LeverAnswer:
        """Pull ``lever`` with its arguments (its model in LEVERS; none for a lever that takes none)."""
        model = spec(lever).model
        args = model() if args is None else args
        if type(args) is not model:
            raise TypeError(f"{lever} takes {model.__name__}, not {type(args).__name__}")
        if self.game.over():
            raise WorkshopError("the game has ended: levers no longer act on the lab")
        control, journal = self.runner.control, self.runner.journal
        if control is None:
            raise LabStarting()
        entry = journal.start(
            LeverEntry(lever=lever, who=who, args=args.model_dump(mode="json"), at=self.scenario_now())
        )
        try:
            done = await self.actions[lever](control, args)
        except WorkshopError as e:
            journal.end(entry, "refused", note=str(e))
            raise
        except LabError as e:
            journal.end(entry, "failed", note=str(e))
            raise WorkshopError(str(e)) from e
        except Exception as e:  # a bug: the journal says so, and the server's log has the traceback
            journal.end(entry, "failed", note=f"{type(e).__name__}: {e}")
            raise
        if isinstance(done, Acked):
            journal.end(entry, "ok", note=done.note, firing=done.firing)
            note = done.note
        else:
            journal.end(entry, "ok", note=done)
            note = done
        self.runner.say(f"\n[{entry.at if entry.at is not None else '-':>6}s] lever {lever} by {who}: {note}")
        return LeverAnswer(lever=lever, who=who, at=entry.at, note=note)

    # ---- noticing and telling ---------------------------------------------------------------

    async def _declare(self, control: LabControl, args: DeclareArgs) -> str:
        return f"incident declared, {args.severity}"

    async def _ack(self, control: LabControl, args: LeverArgs) -> Acked:
        from chaos.promql import query

        # A blocking HTTP call: off the levers' event loop.
        firing = await asyncio.to_thread(query, self.url("prometheus"), 'ALERTS{alertstate="firing"}')
        names = sorted({alert_name(s["metric"].get("alertname", "?"), s["metric"].get("client")) for s in firing})
        # Only an ack of something that pages counts as detecting it (the scorecard reads "firing").
        return Acked("acknowledged: " + (", ".join(names) if names else "no alert was firing"), names)

    async def _status(self, control: LabControl, args: StatusArgs) -> str:
        webs = [n for n, kind in control.arch.instance_kinds().items() if kind == "web"]
        if not webs:
            raise WorkshopError("this lab has no web frontend, so no status page to post on")
        update = {"state": args.state, "text": args.text}
        answers = await control.each("POST", "/control/status", json=update, only=webs)
        bad = [a for a in answers if not a.ok]
        if bad:
            raise LabError(f"the status page refused the update: {bad[0].body}")
        return f"status page now says: {answers[0].body['description']}"

    async def _works_for_me(self, control: LabControl, args: LeverArgs) -> str:
        runner = self.runner
        if runner.app_user is None:
            raise WorkshopError(
                "the logged-in app user could not sign in before the change, so there is no warm cache to show"
            )
        at = self.scenario_now()
        if at is None:  # signed in, but the clock starts a moment later: a probe needs its time
            raise WorkshopError("the game's clock has not started yet: try again in a few seconds")
        # Both make blocking HTTP calls: off the levers' event loop.
        app = await asyncio.to_thread(runner.app_user.look)
        web_visit = await asyncio.to_thread(fresh_web_visit, self.url("web"))
        runner.probes.append(WorksForMeProbe(at=at, app_user=app, web_visit=web_visit))
        return describe(app, web_visit)

    # ---- rollouts -----------------------------------------------------------------------------

    async def _pause(self, control: LabControl, args: LeverArgs) -> str:
        game = self.game
        if game.rollout_paused:
            return "the rollout was already paused"
        game.rollout_paused = True
        if game.rolling_out is None:
            return "no rollout is in progress: the next one will hold before its first wave"
        return f"the rollout of {game.rolling_out} holds before its next wave (waves already moved stay moved)"

    async def _resume(self, control: LabControl, args: LeverArgs) -> str:
        game = self.game
        if not game.rollout_paused:
            return "no rollout was paused: nothing changed"
        game.rollout_paused = False
        return "the rollout goes on" if game.rolling_out else "rollouts may go ahead again"

    async def _rollback(self, control: LabControl, args: LeverArgs) -> str:
        if self.game.rolling_out is not None:
            self.game.rollout_stopped = True  # or its next wave would undo the rollback
        async with holding(self.runner.arch_lock):
            stuck = await rollback(control, keeper=self.runner.keeper)
        if stuck:
            raise LabError(f"no answer from {', '.join(stuck)}")
        return "every process is back on the architecture it started with"

    # ---- caches -------------------------------------------------------------------------------

    async def _flush_cache(self, control: LabControl, args: FlushCacheArgs) -> str:
        return await self._caches(control, "flush", args.cache)

    async def _warm_cache(self, control: LabControl, args: WarmCacheArgs) -> str:
        return await self._caches(control, "warm", args.cache)

    async def _caches(self, control: LabControl, op: str, name: str | None) -> str:
        path = f"/control/caches/{op}" + (f"?name={name}" if name else "")
        answers = await control.each("POST", path, timeout_s=10)  # a warm-up builds under the capacity gate
        bad = [a for a in answers if not a.ok]
        if bad:
            raise LabError(f"{', '.join(a.instance for a in bad)} did not {op} (first answer: {bad[0].body})")
        done: dict[str, int] = {}
        for a in answers:
            for cache, n in a.body["caches"].items():
                done[cache] = done.get(cache, 0) + n
        verb = {"flush": "dropped", "warm": "built"}[op]
        return ", ".join(f"{cache}: {n} entries {verb}" for cache, n in sorted(done.items())) or f"no cache to {op}"

    # ---- the architecture ---------------------------------------------------------------------

    async def _scale(self, control: LabControl, args: ScaleArgs) -> str:
        backend, factor = args.backend, args.factor
        kinds = {name: b.kind for name, b in control.arch.backends.items()}
        if backend not in kinds:
            raise WorkshopError(
                f"backend must be one of {', '.join(kinds)}, not {backend!r} "
                "(the API tier's replicas are fixed: drain one instead)"
            )
        # Only the timeline service builds under a capacity limit. More machines elsewhere change
        # nothing users see: that is the real consequence of scaling the wrong backend.
        if kinds[backend] == "auth":
            return (
                f"{backend} got {factor:g}x the machines, but it turns requests away by its rate limits "
                "(a policy, not a shortage of machines): nothing changed for users"
            )
        if kinds[backend] != "timeline":
            return f"{backend} got {factor:g}x the machines, but it was not short of any: nothing changed for users"

        def edit(arch: Architecture) -> Edited:
            b = arch.backends.get(backend)
            if not isinstance(b, TimelineBackend):
                raise WorkshopError(f"{backend} is not a timeline service in architecture {arch.version}")
            more = b.model_copy(update={"capacity": scaled_count(b.capacity, factor)})
            changed = arch.model_copy(update={"backends": {**arch.backends, backend: more}})
            return changed, f"{backend} capacity now {more.capacity} concurrent builds"

        return await self._change_architecture(control, f"{backend}-x{factor:g}", edit)

    async def _rate_limit(self, control: LabControl, args: RateLimitArgs) -> str:
        factor = args.factor
        auth = next((name for name, b in control.arch.backends.items() if b.kind == "auth"), None)
        if auth is None:
            raise WorkshopError("this lab has no auth backend, so no rate limits to change")

        def edit(arch: Architecture) -> Edited:
            b = arch.backends.get(auth)
            if not isinstance(b, AuthBackend):
                raise WorkshopError(f"{auth} is not an auth service in architecture {arch.version}")
            buckets = {
                name: bucket.model_copy(
                    update={
                        "rate_per_s": round(bucket.rate_per_s * factor, 3),
                        "burst": scaled_count(bucket.burst, factor),
                    }
                )
                for name, bucket in b.buckets.items()
            }
            changed = arch.model_copy(
                update={"backends": {**arch.backends, auth: b.model_copy(update={"buckets": buckets})}}
            )
            limits = ", ".join(f"{n} {bucket.rate_per_s:g}/s" for n, bucket in sorted(buckets.items()))
            return changed, f"auth rate limits now {limits}"

        return await self._change_architecture(control, f"limits-x{factor:g}", edit)

    async def _drain(self, control: LabControl, args: DrainArgs) -> str:
        replica = args.replica

        def edit(arch: Architecture) -> Edited:
            replicas = arch.api.instances
            if replica not in replicas:
                raise WorkshopError(f"replica must be one of {', '.join(replicas)}, not {replica!r}")
            drained = arch.edge.drained if replica in arch.edge.drained else [*arch.edge.drained, replica]
            if set(replicas) <= set(drained):
                raise WorkshopError(f"draining {replica} would leave the edge no replica to send to")
            changed = arch.model_copy(update={"edge": arch.edge.model_copy(update={"drained": drained})})
            return changed, f"the edge sends nothing to {', '.join(drained)}"

        return await self._change_architecture(control, f"drain-{replica}", edit)

    async def _restart(self, control: LabControl, args: RestartArgs) -> str:
        # What a restart clears in the lab is what the process holds in memory: the faults that
        # model a stuck pool or a bad state. Its architecture and its data stay as they are.
        known = control.instances()
        if args.service not in known:
            raise WorkshopError(f"service must be one of {', '.join(known)}, not {args.service!r}")
        (answer,) = await control.each("DELETE", "/control/faults", only=[args.service], timeout_s=3.0)
        if not answer.ok:
            raise LabError(f"{args.service} did not restart: {answer.body}")
        cleared = answer.body.get("removed", 0) if isinstance(answer.body, dict) else 0
        return f"{args.service} restarted ({cleared} stuck state(s) cleared)"

    async def _change_architecture(
        self, control: LabControl, suffix: str, edit: Callable[[Architecture], Edited]
    ) -> str:
        """Change the architecture each process runs now (:func:`chaos.workshop.change.change_architecture`).

        Mid-rollout the change is refused: the rollout's next wave would replace it."""
        runner = self.runner
        async with holding(runner.arch_lock):
            if self.game.rolling_out is not None:
                raise WorkshopError(
                    f"the rollout {self.game.rolling_out!r} is still in progress (paused or not) and its next "
                    "wave would replace this change: roll it back, or wait until it has finished"
                )
            return await change_architecture(control, suffix, edit, runner.keeper)

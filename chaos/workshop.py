"""Workshop mode: a game day on a replayed outage, for teaching incident response.

``failwhale workshop start`` starts the lab, its load and the dashboard, and plays a scenario
without naming it: its change happens after a quiet lead-in of a length only the seed knows,
and its own rollback steps are left out, because finding the fix is the participants' job.
The facilitator gets a private sheet (``failwhale workshop sheet``): the scenario, its timeline,
what to look for, a ladder of hints and the debrief questions.

Participants pull levers (``failwhale workshop lever ...``) through a small HTTP server that
needs the room's token (the one in the participants' link). Each lever acts on the running lab for real (a rollback moves every
process back to its baseline; scaling the timeline service really gives it more capacity,
which helps only if capacity was the problem) and is written to the run's journal with who
pulled it and when. ``failwhale workshop end`` stops the game, with a second token only the facilitator's terminal
reads, so no participant can end it; the run folder then holds a
scorecard (time to detect, time to mitigate, users hurt, reports) and a postmortem draft.

The same seed plays the same scenario with the same lead-in, so two rooms can play the same game.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import itertools
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web

from chaos import records
from chaos.engine.hooks import PlayStep, StepResult
from chaos.engine.runner import Runner
from chaos.errors import BadInput, LabError
from chaos.lab.supervisor import DASHBOARD, write_private
from chaos.lease import LeaseKeeper
from chaos.probe import describe, fresh_web_visit
from chaos.records import (
    JournalEntry,
    LeverEntry,
    LeverPulled,
    Pull,
    Scorecard,
    Series,
    ServedAfter,
    Since,
    StepDetail,
    StepEntry,
    Summary,
    WorksForMeProbe,
    WorkshopRecord,
)
from chaos.rollout import holding, rollback
from chaos.scenario import CATALOG, CHANGES, Phase, Rollback, Rollout, Scenario, Step, Workshop, load_scenario
from chaos.series import alert_name
from services.common.hosts import host_check
from services.config import LabConfig

PORT_NAME = "workshop"
LEAD_IN_S = (10, 40)  # scenario seconds of an ordinary evening before the change
DEFAULT_LIMIT_S = 1800.0  # a workshop ends by itself after this many wall seconds
SERVED_WINDOW_S = 15.0  # the rate window of client:failwhale_journeys_served:ratio_rate15s
SEVERITIES = ("SEV1", "SEV2", "SEV3")
# What each lever needs besides who pulls it.
LEVERS: dict[str, str] = {
    "declare": "declare an incident (--severity SEV1|SEV2|SEV3)",
    "ack": "acknowledge the alerts that page now",
    "pause": "hold the rollout in progress (or the next one) before its next wave",
    "resume": "let a paused rollout go on",
    "rollback": "move every process back to the architecture it started with",
    "scale": "give a backend more (or fewer) machines (--backend timeline --factor 2)",
    "rate-limit": "multiply auth's rate limits (--factor 2 raises them, 0.5 lowers them)",
    "flush-cache": "empty caches (--cache timelines|tokens; all by default)",
    "warm-cache": "build the timeline cache's entries again before users ask",
    "drain": "stop the edge sending requests to an API replica (--replica api-2)",
    "status": "post a status-page update (--state investigating|identified|monitoring|resolved --text ...)",
    "works-for-me": "the facilitator's view: a logged-in app user with a warm cache, and a fresh web visit",
}
STATUS_STATES = ("investigating", "identified", "monitoring", "resolved")
# The journal's note beside each way a step goes unplayed (StepEntry.unplayed says which, for code).
UNPLAYED_NOTES = {
    "left_to_participants": "left to the participants",
    "after_the_game": "not played: the workshop had ended",
}
CACHES = ("timelines", "tokens")


class WorkshopError(BadInput):
    """A workshop cannot start, or a lever cannot be pulled; one line saying why."""


def catalog() -> list[Path]:
    """The catalog's scenarios that say how to run them as a workshop, by name."""
    return sorted(p for p in CATALOG.glob("*.yaml") if load_scenario(p).workshop is not None)


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
        f"`failwhale workshop lever {w.fix}`: web and app journeys should hold again within "
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


# ---- levers ---------------------------------------------------------------------------------------


class Levers:
    """The participants' levers, acting on the lab the runner plays; every pull is journaled."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.ended = threading.Event()

    @property
    def runner(self) -> Runner:
        """The run the game plays, which the levers act on."""
        return self.game.runner

    def scenario_now(self) -> float | None:
        t0 = self.runner.t0
        return None if t0 is None else round((time.time() - t0) * self.runner.speed, 1)

    def url(self, name: str) -> str:
        """A lab process's URL (levers act only once the lab is up)."""
        if self.runner.control is None:
            raise WorkshopError("the lab is still starting: try again in a few seconds")
        return self.runner.url(name)

    async def pull(self, lever: str, who: str, args: dict[str, Any]) -> dict[str, Any]:
        if lever not in LEVERS:
            raise WorkshopError(f"no lever named {lever!r}; there are: {', '.join(LEVERS)}")
        if self.game.over():
            raise WorkshopError("the game has ended: levers no longer act on the lab")
        control, journal = self.runner.control, self.runner.journal
        if control is None:
            raise WorkshopError("the lab is still starting: try again in a few seconds")
        entry = journal.start(LeverEntry(lever=lever, who=who, args=args, at=self.scenario_now()))
        detail: dict[str, Any] = {}
        try:
            note = await getattr(self, "_" + lever.replace("-", "_"))(control, args)
            if isinstance(note, tuple):  # (note, what the journal should keep beside it)
                note, detail = note
        except WorkshopError as e:
            journal.end(entry, "refused", note=str(e))
            raise
        except LabError as e:
            journal.end(entry, "failed", note=str(e))
            raise WorkshopError(str(e)) from e
        except Exception as e:  # a bug: the journal says so, and the server's log has the traceback
            journal.end(entry, "failed", note=f"{type(e).__name__}: {e}")
            raise
        journal.end(entry, "ok", note=note, **detail)
        self.runner.say(f"\n[{entry.at if entry.at is not None else '-':>6}s] lever {lever} by {who}: {note}")
        return {"lever": lever, "who": who, "at": entry.at, "note": note}

    async def _declare(self, control, args: dict[str, Any]) -> str:
        severity = str(args.get("severity") or "SEV2").upper()
        if severity not in SEVERITIES:
            raise WorkshopError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        return f"incident declared, {severity}"

    async def _ack(self, control, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from chaos.promql import query

        # A blocking HTTP call: off the levers' event loop.
        firing = await asyncio.to_thread(query, self.url("prometheus"), 'ALERTS{alertstate="firing"}')
        names = sorted({alert_name(s["metric"].get("alertname", "?"), s["metric"].get("client")) for s in firing})
        # Only an ack of something that pages counts as detecting it (the scorecard reads "firing").
        return "acknowledged: " + (", ".join(names) if names else "no alert was firing"), {"firing": names}

    async def _pause(self, control, args: dict[str, Any]) -> str:
        runner = self.game
        if runner.rollout_paused:
            return "the rollout was already paused"
        runner.rollout_paused = True
        if runner.rolling_out is None:
            return "no rollout is in progress: the next one will hold before its first wave"
        return f"the rollout of {runner.rolling_out} holds before its next wave (waves already moved stay moved)"

    async def _resume(self, control, args: dict[str, Any]) -> str:
        runner = self.game
        if not runner.rollout_paused:
            return "no rollout was paused: nothing changed"
        runner.rollout_paused = False
        return "the rollout goes on" if runner.rolling_out else "rollouts may go ahead again"

    async def _rollback(self, control, args: dict[str, Any]) -> str:
        if self.game.rolling_out is not None:
            self.game.rollout_stopped = True  # or its next wave would undo the rollback
        async with holding(self.runner.arch_lock):
            stuck = await rollback(control, keeper=self.runner.keeper)
        if stuck:
            raise LabError(f"no answer from {', '.join(stuck)}")
        return "every process is back on the architecture it started with"

    async def _flush_cache(self, control, args: dict[str, Any]) -> str:
        return await self._caches(control, "flush", args)

    async def _warm_cache(self, control, args: dict[str, Any]) -> str:
        return await self._caches(control, "warm", args)

    async def _caches(self, control, op: str, args: dict[str, Any]) -> str:
        name = args.get("cache") or None
        if name is not None and name not in CACHES:
            raise WorkshopError(f"cache must be one of {', '.join(CACHES)}, not {name!r}")
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

    async def _drain(self, control, args: dict[str, Any]) -> str:
        replica = str(args.get("replica") or "")

        def edit(arch: dict[str, Any]) -> str:
            replicas = arch["api"]["instances"]
            if replica not in replicas:
                raise WorkshopError(f"replica must be one of {', '.join(replicas)}, not {replica!r}")
            drained = arch["edge"].setdefault("drained", [])
            if replica not in drained:
                drained.append(replica)
            if set(replicas) <= set(drained):
                raise WorkshopError(f"draining {replica} would leave the edge no replica to send to")
            return f"the edge sends nothing to {', '.join(drained)}"

        return await self._change_architecture(control, f"drain-{replica}", edit)

    async def _status(self, control, args: dict[str, Any]) -> str:
        state = str(args.get("state") or "investigating")
        text = str(args.get("text") or "").strip()
        if state not in STATUS_STATES:
            raise WorkshopError(f"state must be one of {', '.join(STATUS_STATES)}, not {state!r}")
        if not text:
            raise WorkshopError("a status update needs its words (--text ...)")
        webs = [n for n, kind in control.arch.instance_kinds().items() if kind == "web"]
        if not webs:
            raise WorkshopError("this lab has no web frontend, so no status page to post on")
        answers = await control.each("POST", "/control/status", json={"state": state, "text": text}, only=webs)
        bad = [a for a in answers if not a.ok]
        if bad:
            raise LabError(f"the status page refused the update: {bad[0].body}")
        return f"status page now says: {answers[0].body['description']}"

    async def _works_for_me(self, control, args: dict[str, Any]) -> str:
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

    async def _scale(self, control, args: dict[str, Any]) -> str:
        backend = str(args.get("backend") or "timeline")
        factor = _factor(args)
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

        def edit(arch: dict[str, Any]) -> str:
            b = arch["backends"][backend]
            b["capacity"] = max(1, round(b["capacity"] * factor))
            return f"{backend} capacity now {b['capacity']} concurrent builds"

        return await self._change_architecture(control, f"{backend}-x{factor:g}", edit)

    async def _rate_limit(self, control, args: dict[str, Any]) -> str:
        factor = _factor(args)

        auth = next((name for name, b in control.arch.backends.items() if b.kind == "auth"), None)
        if auth is None:
            raise WorkshopError("this lab has no auth backend, so no rate limits to change")

        def edit(arch: dict[str, Any]) -> str:
            buckets = arch["backends"][auth]["buckets"]
            for b in buckets.values():
                b["rate_per_s"] = round(b["rate_per_s"] * factor, 3)
                b["burst"] = max(1, round(b["burst"] * factor))
            return "auth rate limits now " + ", ".join(f"{n} {b['rate_per_s']:g}/s" for n, b in sorted(buckets.items()))

        return await self._change_architecture(control, f"limits-x{factor:g}", edit)

    async def _change_architecture(self, control, suffix: str, edit: Callable[[dict[str, Any]], str]) -> str:
        """Change the architecture each process runs now, and move it to the changed copy.

        Mid-rollout the change is refused: the rollout's next wave would replace it. Processes
        may still run different versions (after a stopped rollout, say): each version is edited
        on its own. Every edit is made (and may be refused) before any process moves, and if a
        process does not take its copy, those that did go back to what they ran before."""
        runner = self.runner
        async with holding(runner.arch_lock):
            if self.game.rolling_out is not None:
                raise WorkshopError(
                    f"the rollout {self.game.rolling_out!r} is still in progress (paused or not) and its next "
                    "wave would replace this change: roll it back, or wait until it has finished"
                )
            return await _change_architecture(control, suffix, edit, runner.keeper)


def _factor(args: dict[str, Any]) -> float:
    try:
        factor = float(args.get("factor", 2))
    except (TypeError, ValueError) as e:
        raise WorkshopError(f"factor must be a number, not {args.get('factor')!r}") from e
    if not 0.1 <= factor <= 10:
        raise WorkshopError(f"factor must be between 0.1 and 10, not {factor:g}")
    return factor


async def _change_architecture(
    control, suffix: str, edit: Callable[[dict[str, Any]], str], keeper: LeaseKeeper | None
) -> str:
    """Change the architecture each process runs now, and move it to the changed copy.

    Mid-rollout, processes run different versions: each version is edited on its own, so the
    lever neither finishes nor undoes the rollout. Every edit is made (and may be refused)
    before any process moves. Each change is a lease the game's ``keeper`` renews: when the
    game ends, however it ends, the lab goes back to its baseline within one lease."""
    current = await control.each("GET", "/control/architecture")
    unread = [a for a in current if not a.ok]
    if unread:
        raise LabError(
            f"could not read the running architecture of {', '.join(a.instance for a in unread)}: {unread[0].body}"
        )
    by_version: dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]] = {}
    for a in current:
        arch = a.body["architecture"]
        by_version.setdefault(a.body["version"], (copy.deepcopy(arch), arch, []))[2].append(a.instance)
    notes = []
    for _before, arch, _names in by_version.values():
        notes.append(edit(arch))
        arch["version"] = f"{arch['version']}-{suffix}"[:32]
    answers = {}
    for before, arch, names in by_version.values():
        if keeper is not None:
            keeper.hold(names, arch["version"])  # before the request: its answer may be lost
        answers[before["version"]] = await control.each(
            "PUT", "/control/architecture", json={"architecture": arch}, only=names, timeout_s=3
        )
    bad = [a for group in answers.values() for a in group if not a.ok]
    if keeper is not None:
        keeper.release([a.instance for a in bad if a.status != 0])  # refused: it runs what it ran before
    if bad:
        # No half-applied change: every process asked goes back to what it ran before (one whose
        # answer was lost may have moved), and the undo's own answers are checked.
        stuck = []
        for before, _arch, _names in by_version.values():
            # Those that took the change, and those whose answer was lost (they may have):
            # a process that refused it runs what it ran before.
            moved = [a.instance for a in answers[before["version"]] if a.ok or a.status == 0]
            if not moved:
                continue
            if keeper is not None:
                keeper.hold(moved, before["version"])
            undo = await control.each(
                "PUT", "/control/architecture", json={"architecture": before}, only=moved, timeout_s=3
            )
            stuck += [a.instance for a in undo if not a.ok]
        tail = (
            f"; {', '.join(stuck)} did not confirm going back (their leases lapse to the baseline)"
            if stuck
            else "; the others went back, so nothing changed"
        )
        raise LabError(
            f"could not move {len(bad)} process(es) ({', '.join(a.instance for a in bad)}): {bad[0].body}{tail}"
        )
    return "; ".join(dict.fromkeys(notes))


# ---- the lever server -----------------------------------------------------------------------------

LEVERS_KEY = web.AppKey("levers", Levers)
TOKEN_KEY = web.AppKey("token", str)
FACILITATOR_TOKEN_KEY = web.AppKey("facilitator_token", str)
TOKEN_FILE = "token"  # the room's: in the link the participants get
FACILITATOR_TOKEN_FILE = "facilitator-token"  # only the facilitator's terminal reads it


def _bearer(request: web.Request, token: str) -> bool:
    return hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode())


async def _pull(request: web.Request) -> web.Response:
    lever = request.match_info["lever"]
    # The room's token is in every participant's link; ending the game is the facilitator's call.
    if lever == "end" and not _bearer(request, request.app[FACILITATOR_TOKEN_KEY]):
        status = 403 if _bearer(request, request.app[TOKEN_KEY]) else 401
        return web.json_response(
            {
                "error": "only the facilitator ends the game: it needs the facilitator's token, "
                "not the room's (failwhale workshop end reads it)"
            },
            status=status,
        )
    if lever != "end" and not _bearer(request, request.app[TOKEN_KEY]):
        return web.json_response({"error": "missing or wrong workshop token (Authorization: Bearer ...)"}, status=401)
    try:
        body = await request.json()
    except RecursionError:  # json.loads recurses once per level: [[[[...
        return web.json_response({"error": "the body nests too deeply"}, status=400)
    except ValueError:  # also an integer of more than 4,300 digits
        return web.json_response({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "the body must be a JSON object"}, status=400)
    who = str(body.pop("who", "") or "someone")[:40]
    levers = request.app[LEVERS_KEY]
    if lever == "end":
        run_dir = str(levers.runner.run_dir)
        if levers.game.over():
            return web.json_response(
                {"lever": "end", "who": who, "note": "the workshop was already ending", "run_dir": run_dir}
            )
        journal = levers.runner.journal
        entry = journal.start(LeverEntry(lever="end", who=who, at=levers.scenario_now()))
        journal.end(entry, "ok", note="the game ends")
        levers.ended.set()
        return web.json_response({"lever": "end", "who": who, "note": "the workshop is ending", "run_dir": run_dir})
    try:
        return web.json_response(await levers.pull(lever, who, body))
    except WorkshopError as e:
        return web.json_response({"error": str(e)}, status=409 if "starting" in str(e) else 400)


PAGE = Path(__file__).with_name("static") / "levers.html"
DASHBOARD_KEY = web.AppKey("dashboard_url", str)


async def _page(request: web.Request) -> web.FileResponse:
    # The page itself holds no secret: every pull it makes needs the token.
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"levers": LEVERS, "dashboard": request.app[DASHBOARD_KEY]})


def _misdirected(host: str) -> web.Response:
    return web.json_response({"error": f"this is the workshop's levers, not {host}"}, status=421)


def lever_app(
    levers: Levers, token: str, facilitator_token: str, dashboard_url: str = "", address: tuple[str, int] | None = None
) -> web.Application:
    """The levers' server; with ``address``, it answers only Host headers naming it (DNS rebinding)."""
    if hmac.compare_digest(token, facilitator_token):
        raise WorkshopError("the room's token and the facilitator's must differ")
    app = web.Application(middlewares=[host_check(*address, _misdirected)] if address else [])
    app[LEVERS_KEY] = levers
    app[TOKEN_KEY] = token
    app[FACILITATOR_TOKEN_KEY] = facilitator_token
    app[DASHBOARD_KEY] = dashboard_url
    app.router.add_get("/", _page)
    app.router.add_get("/levers", _list)
    app.router.add_post("/levers/{lever}", _pull)
    return app


class LeverServer:
    """The lever app on its own thread and event loop, beside the runner's timeline."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, host, port)
        try:
            self.loop.run_until_complete(site.start())
        except OSError as e:
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.close()
            raise WorkshopError(f"the workshop's levers cannot listen on {host}:{port}: {e.strerror or e}") from e
        self.thread = threading.Thread(target=self.loop.run_forever, name="levers", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()


# ---- the game -------------------------------------------------------------------------------------


def workshop_dir(lab: LabConfig) -> Path:
    return lab.data_path / "workshop"


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
    ) -> None:
        self.plan = plan
        self.sheet_text = sheet_text
        self.limit_s = limit_s
        self.levers = Levers(self)
        self.rolling_out: str | None = None  # the name of the rollout step playing now
        self.rollout_paused = False
        self.rollout_stopped = False
        self.server: LeverServer | None = None
        self._ends_at = float("inf")  # wall clock; set once the lab is up
        # What the postmortem is written from: the game as it went, and its summary.
        self.played: Scenario | None = None
        self.summary: Summary | None = None
        self.runner = Runner(scenario, name, out, speed, lab_config, say=say, quick=quick, scale=scale, hooks=self)

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
        if PORT_NAME not in lab.ports:
            raise WorkshopError(f"{lab.source or 'lab config'}: ports: no port for {PORT_NAME!r}")
        self._ends_at = time.time() + self.runner.warmup_s + self.limit_s
        token, facilitator_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        dashboard = lab.url(DASHBOARD) + "/" if DASHBOARD in lab.ports else ""
        self.server = LeverServer(
            lever_app(self.levers, token, facilitator_token, dashboard, address=(lab.host, lab.port(PORT_NAME))),
            lab.host,
            lab.port(PORT_NAME),
        )
        # Written only now that this game holds the lab's ports: a second start, which cannot,
        # never overwrites the running game's sheet or token.
        if self.sheet_text:
            sheet = write_private(workshop_dir(lab) / "sheet.md", self.sheet_text)
            self.say(f"the facilitator's sheet is {sheet} (or: failwhale workshop sheet)")
        write_private(workshop_dir(lab) / FACILITATOR_TOKEN_FILE, facilitator_token + "\n")
        token_path = write_private(workshop_dir(lab) / TOKEN_FILE, token + "\n")
        self.say(
            f"levers open on {lab.url(PORT_NAME)}/ (token in {token_path}, mode 0600; "
            "`failwhale workshop sheet` prints the room's link)"
        )

    def play_step(self, step: Step, play: PlayStep) -> StepResult:
        if isinstance(step, Rollback):
            # "skipped", not "ok": the dashboard marks rollback steps that ran, and this one did not.
            unplayed: Literal["left_to_participants", "after_the_game"] = "left_to_participants"
            return "skipped", StepDetail(note=UNPLAYED_NOTES[unplayed], unplayed=unplayed)
        if self.over():
            return "ok", StepDetail(note=UNPLAYED_NOTES["after_the_game"], unplayed="after_the_game")
        if isinstance(step, Rollout):
            # Reset first: a rollback pulled as the rollout starts must still stop it.
            self.rollout_stopped = False
            self.rolling_out = step.name or step.action
            try:
                return play(step)
            finally:
                self.rolling_out = None
        return play(step)

    def until_end(self, t0: float, wait: Callable[[], None]) -> None:
        """The game goes on after the timeline, until the facilitator ends it or its time is up."""
        if not self.over():
            self.say(
                f"\nthe timeline has played; the game goes on until `failwhale workshop end` "
                f"(or {max(0.0, self._ends_at - time.time()) / 60:.0f} more minutes)"
            )
        self.runner.sleep_until(self._ends_at, "the game", t0)
        if not self.levers.ended.is_set():
            entry = self.runner.journal.start(LeverEntry(lever="end", who="the clock", at=self.levers.scenario_now()))
            self.runner.journal.end(entry, "ok", note=f"time is up ({self.limit_s / 60:g} minutes)")
            self.levers.ended.set()
            self.say(f"\ntime is up ({self.limit_s / 60:g} minutes): the game ends")

    def as_played(self, t0: float, planned: Scenario) -> Scenario:
        """The scenario as this game really went, for the figures: from the start to the game's
        end, in phases cut where the change really came and where the fix was pulled (not where
        the scenario planned them: a paused rollout comes later, and the room picks the fix's time).
        What each lever did is measured first, while the lab's Prometheus still has it."""
        try:
            self.lever_effects(t0)
        except LabError as e:
            self.say(f"warning: could not measure what each lever did: {e}")
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
        self.played = played
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
        """The game's scorecard goes into the summary and beside it (scorecard.json)."""
        card = scorecard(summary, self.runner.journal.entries, self.played or self.runner.scenario, self.runner.speed)
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
        from chaos import postmortem

        card = summary.workshop.scorecard
        played = self.played or self.runner.scenario
        postmortem.write(run_dir, summary, series, self.runner.journal.entries, played, card, scorecard_text(card))


# ---- scorecard and postmortem -----------------------------------------------------------------------


def game_end_at(journal: list[JournalEntry], now_at: float) -> float:
    """When the game ended (scenario seconds): the end lever, the clock's end, or now."""
    end = next(
        (e.at for e in journal if isinstance(e, LeverEntry) and e.lever == "end" and e.at is not None),
        None,
    )
    return now_at if end is None else end


def fix_pulled(
    journal: list[JournalEntry], w: Workshop | None, change_at: float | None, end_at: float = float("inf")
) -> Pull | None:
    """The room's first successful pull of the scenario's fix, from the change until the game's end."""
    if w is None or change_at is None:
        return None
    return next(
        (
            Pull(at=e.at, lever=e.lever, who=e.who)
            for e in journal
            if isinstance(e, LeverEntry)
            and e.lever == w.fix
            and e.outcome == "ok"
            and e.at is not None
            and change_at <= e.at < end_at
        ),
        None,
    )


def actual_change_at(journal: list[JournalEntry], t0: float | None, speed: float) -> float | None:
    """When the change really reached the lab (scenario seconds): a paused rollout's first wave
    moves later than planned, and a stopped one (or one the game's end left unplayed) never does (None)."""
    step = next((e for e in journal if isinstance(e, StepEntry) and e.action in CHANGES), None)
    if step is None or t0 is None or step.unplayed is not None:
        return None
    if step.action == "rollout":
        moved = step.wave_times or []
        return round((moved[0] - t0) * speed, 1) if moved else None
    return round((step.started - t0) * speed, 1) if step.outcome == "ok" else None


# Levers that change what the lab does (the rest notice, tell, or look).
ACTING = ("pause", "resume", "rollback", "scale", "rate-limit", "flush-cache", "warm-cache", "drain")


def _since(at: float | None, change_at: float, speed: float) -> Since | None:
    if at is None:
        return None
    return Since(scenario_s=round(at - change_at, 1), wall_s=round((at - change_at) / speed, 1))


def _recovered_at(summary: Summary, change_happened: bool, end_at: float) -> float | None:
    """When users were fine again (scenario s), if that was during the game."""
    trouble = summary.trouble
    if trouble is None or trouble.seconds is None or not change_happened:
        return None
    # After the game's end, that was the lab's own cleanup, not the room's doing.
    return trouble.end if trouble.end <= end_at else None


def scorecard(summary: Summary, journal: list[JournalEntry], scenario: Scenario, speed: float) -> Scorecard:
    """How the room did, in scenario seconds from the change (wall seconds beside)."""
    w = scenario.workshop
    planned = next((s.at for s in scenario.timeline if s.action in CHANGES), 0.0)
    actual = actual_change_at(journal, summary.started, speed)
    change_at = planned if actual is None else actual
    pulled = [e for e in journal if isinstance(e, LeverEntry)]
    end_at = game_end_at(journal, float("inf"))
    # Only what came after the change can have noticed it, told users about it or fixed it (levers
    # pulled before the clock started have no time, and came before it); an ack detects only when
    # something was paging, and "resolved" tells users nothing is wrong.
    after = [
        (Pull(at=e.at, lever=e.lever, who=e.who), e)
        for e in pulled
        if actual is not None and e.at is not None and e.lever != "end" and e.outcome == "ok" and e.at >= change_at
    ]
    detect = next((p for p, e in after if e.lever == "declare" or (e.lever == "ack" and e.firing)), None)
    told = next((p for p, e in after if e.lever == "status" and e.args.get("state") != "resolved"), None)
    fix = fix_pulled(journal, w, change_at if actual is not None else None, end_at)
    recovered_at = _recovered_at(summary, actual is not None, end_at)
    # Whatever the room pulled last before users were fine again is what mitigated it.
    mitigated = (
        None
        if recovered_at is None
        else next((p for p, e in reversed(after) if e.lever in ACTING and p.at <= recovered_at), None)
    )
    return Scorecard(
        change_at=change_at,
        first_alert=summary.alerts[0] if summary.alerts else None,
        detected=detect,
        time_to_detect=_since(None if detect is None else detect.at, change_at, speed),
        told_users=told,
        time_to_tell=_since(None if told is None else told.at, change_at, speed),
        change_happened=actual is not None,
        fixed=fix,
        recovered_at=recovered_at,
        time_to_mitigate=_since(recovered_at, change_at, speed),
        mitigated_by=mitigated,
        recovered_within_bound=None
        if fix is None or recovered_at is None or w is None or recovered_at < fix.at
        else recovered_at - fix.at <= w.recovers_within,
        users_hurt=summary.users_hurt,
        user_reports=summary.user_reports,
        levers=[
            LeverPulled(at=e.at, who=e.who, lever=e.lever, outcome=e.outcome, note=e.note, served_after=e.served_after)
            for e in pulled
        ],
        works_for_me=summary.works_for_me,
    )


def _dur(d: Since | None) -> str:
    return "-" if d is None else f"{d.scenario_s:g} scenario s ({d.wall_s:g} s on the clock)"


def _mitigation(card: Scorecard) -> str:
    if not card.change_happened:
        return "-, the change never reached the lab"
    if card.time_to_mitigate is None:
        return "-, users were still failing when the game ended" + ("" if card.fixed else " (no fix was pulled)")
    by = card.mitigated_by
    return _dur(card.time_to_mitigate) + (f", after {by.lever} by {by.who}" if by else ", with no lever pulled")


def _effect(after: ServedAfter | None) -> str:
    """What the scorecard says a lever did, from the journeys served after it."""
    if after is not None and after.at is not None and after.web is not None and after.app is not None:
        return f"; then web {after.web:.0%}, app {after.app:.0%} of journeys served at T+{after.at:g}s"
    if after is not None and after.too_soon:
        return "; the next lever came too soon to tell what this one did"
    return ""


def scorecard_text(card: Scorecard) -> str:
    """The scorecard as the facilitator's terminal and the postmortem show it."""
    hurt, reports, detected, told = card.users_hurt, card.user_reports, card.detected, card.told_users
    lines = [
        "scorecard",
        f"  time to detect    {_dur(card.time_to_detect)}"
        + (f", by {detected.who} ({detected.lever})" if detected else ""),
        f"  time to mitigate  {_mitigation(card)}",
        f"  time to tell      {_dur(card.time_to_tell)}"
        + (f", by {told.who}" if told else ", no status update was posted"),
        f"  users hurt        web {hurt.get('web', '-')}, app {hurt.get('app', '-')}",
        "  user reports      " + ", ".join(f"{k} {v}" for k, v in reports.items()),
        "  levers pulled     " + ("" if card.levers else "none"),
    ]
    for x in card.levers:
        when = "before the start" if x.at is None else f"T+{x.at:g}s"
        lines.append(f"    {when} {x.lever} by {x.who} ({x.outcome}){_effect(x.served_after)}")
    return "\n".join(lines)


# ---- the client side: what `failwhale workshop lever/end` send -----------------------------------------


def room_link(lab: LabConfig) -> str | None:
    """The levers page with the token in its fragment (never sent to a server), or None before the lab is up."""
    try:
        token = (workshop_dir(lab) / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return f"{lab.url(PORT_NAME)}/#token={token}"


def send(lab: LabConfig, lever: str, who: str, args: dict[str, Any], timeout_s: float = 15.0) -> dict[str, Any]:
    """Pull a lever of the running workshop; its answer, or a WorkshopError with the server's reason."""
    token_path = workshop_dir(lab) / (FACILITATOR_TOKEN_FILE if lever == "end" else TOKEN_FILE)
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except OSError as e:
        if token_path.name != TOKEN_FILE and (workshop_dir(lab) / TOKEN_FILE).exists():
            raise WorkshopError(
                f"only the facilitator ends the game ({token_path} is missing here): "
                "end it from the terminal that started it"
            ) from e
        raise WorkshopError(
            f"no workshop is running here ({token_path} is missing): start one with `failwhale workshop start`"
        ) from e
    if PORT_NAME not in lab.ports:
        raise WorkshopError(f"{lab.source or 'lab config'}: ports: no port for {PORT_NAME!r}")

    async def post() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.post(
                f"{lab.url(PORT_NAME)}/levers/{lever}",
                json={"who": who, **args},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                return resp.status, await resp.json(content_type=None)

    try:
        status, body = asyncio.run(post())
    except (TimeoutError, aiohttp.ClientError) as e:
        raise WorkshopError(f"the workshop at {lab.url(PORT_NAME)} did not answer: {e.__class__.__name__}") from e
    except ValueError as e:  # not JSON: the server failed; its log says why
        raise WorkshopError(f"the workshop at {lab.url(PORT_NAME)} failed to pull {lever!r} (see its terminal)") from e
    if status != 200:
        raise WorkshopError(str(body.get("error") if isinstance(body, dict) else body))
    return body

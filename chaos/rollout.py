"""Rolling an architecture change out in waves, with a guard that rolls it back by itself.

A rollout moves processes to a new architecture wave by wave. Between waves it *bakes*: it
waits, checking a guard every few seconds. The guard is a PromQL expression that returns
something only when things are bad (for example a failure ratio ``> 0.05``); when it does,
the rollout stops and every process it moved goes back to its baseline. Ctrl-C or any error
mid-rollout rolls back too, and so does ``failwhale halt`` run anywhere, before the next wave.
Each process holds the change under a lease (see ``chaos.lease``), so a rollout whose process
dies outright is undone within one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from chaos.control import Answer, LabControl, until_confirmed
from chaos.errors import BadInput, LabError
from chaos.lease import DEFAULT_LEASE_S, LeaseKeeper
from chaos.promql import query_async
from services.architecture import Architecture

Say = Callable[[str], None]
# How long a rollback keeps asking processes that do not confirm (a saturated lab answers late).
ROLLBACK_DEADLINE_S = 5.0
HALT_CHECK_EVERY_S = 0.5  # how often a baking rollout looks for a halt (a stat of one file)
HALT_ASK_EVERY_S = 2.0  # how often it asks the processes whether a halt elsewhere put them back
Hold = Callable[[], Literal["go", "wait", "stop"]]


def check_same_processes(new: Architecture, running: Architecture, where: str) -> None:
    """A rollout changes settings, not processes: a BadInput when ``new`` (from ``where``) runs others."""
    if set(new.instance_kinds()) != set(running.instance_kinds()):
        raise BadInput(
            f"{where}: its processes differ from the running lab's; a rollout changes settings, not processes"
        )


def plan_waves(arch: Architecture, waves: list[float] | list[list[str]]) -> list[list[str]]:
    """Waves over the lab's processes: every non-API process with the first wave, then the API
    replicas either in cumulative fractions (0.25, 0.5, 1.0 of the replicas) or as named lists
    ([[api-1], [api-2, api-3]]). Replicas no wave names move in a last wave."""
    named = [w for w in waves if isinstance(w, list)]
    if waves and len(named) == len(waves):
        return _named_waves(arch, named)
    if named:
        raise BadInput("waves must be all fractions or all lists of replicas, not a mix")
    fractions = [w for w in waves if not isinstance(w, list)]
    if not fractions or any(not 0 < f <= 1 for f in fractions) or fractions != sorted(fractions):
        raise BadInput(f"wave fractions must rise from above 0 to at most 1, got {fractions}")
    if fractions[-1] != 1:
        fractions = [*fractions, 1.0]
    replicas = list(arch.api.instances)
    others = [name for name, kind in arch.instance_kinds().items() if kind != "api"]
    planned: list[list[str]] = []
    done = 0
    for f in fractions:
        upto = max(done + 1, math.ceil(f * len(replicas))) if done < len(replicas) else done
        wave = replicas[done:upto]
        if not planned:
            wave = others + wave
        if wave:
            planned.append(wave)
        done = upto
    return planned


def _named_waves(arch: Architecture, named: list[list[str]]) -> list[list[str]]:
    replicas = list(arch.api.instances)
    seen: set[str] = set()
    for wave in named:
        for name in wave:
            if name not in replicas:
                raise BadInput(f"wave names {name!r}, which is not an API replica ({', '.join(replicas)})")
            if name in seen:
                raise BadInput(f"{name} is in two waves")
            seen.add(name)
    waves = [list(w) for w in named if w]
    rest = [r for r in replicas if r not in seen]
    if rest:
        waves.append(rest)
    others = [name for name, kind in arch.instance_kinds().items() if kind != "api"]
    waves[0] = others + waves[0]
    return waves


@dataclass
class RolloutResult:
    version: str
    completed_waves: int
    total_waves: int
    moved: list[str] = field(default_factory=list)
    rolled_back: bool = False
    reason: str = ""
    wave_times: list[float] = field(default_factory=list)  # wall clock, when each wave had moved
    rolled_back_at: float | None = None
    guard_breached: bool = False  # rolled back because the guard fired (not a stop, halt or error)

    @property
    def ok(self) -> bool:
        return not self.rolled_back


async def guard_breached(session: aiohttp.ClientSession, prometheus_url: str, promql: str) -> str | None:
    """The guard's answer: None when healthy, else a description of what it returned."""
    try:
        result = await query_async(session, prometheus_url, promql)
    except LabError as e:
        raise BadInput(f"guard query failed: {e}") from e
    if not result:
        return None
    values = ", ".join(f"{s['value'][1]}" for s in result[:3])
    return f"guard returned {values}"


async def rollback(
    control: LabControl,
    names: list[str] | None = None,
    *,
    deadline_s: float = ROLLBACK_DEADLINE_S,
    keeper: LeaseKeeper | None = None,
) -> list[str]:
    """Every named process (default: all) back on its baseline, asking again those that do not
    confirm until ``deadline_s``; the names of those still unconfirmed (their leases lapse anyway)."""
    everyone = list(names) if names is not None else control.instances()

    async def ask(pending: list[str], timeout_s: float) -> dict[str, Answer]:
        answers = await control.each("POST", "/control/architecture/baseline", only=pending, timeout_s=timeout_s)
        return {a.instance: a for a in answers}

    last = await until_confirmed(ask, everyone, deadline_s, max_timeout_s=2.0, pause_s=0.2)
    pending = [name for name in everyone if not last[name].ok]
    if keeper is not None:
        keeper.release([n for n in everyone if n not in pending])
    return pending


async def rollout(
    control: LabControl,
    new: Architecture,
    waves: list[list[str]],
    *,
    bake_s: float,
    guard: str | None,
    prometheus_url: str,
    guard_every_s: float = 2.0,
    say: Say = lambda _m: None,
    hold: Hold = lambda: "go",
    lock: threading.Lock | None = None,
    keeper: LeaseKeeper | None = None,
    lease_s: float | None = DEFAULT_LEASE_S,
) -> RolloutResult:
    """Move ``waves`` to ``new`` one by one. Before each wave, ``hold()`` may say "wait" (an
    operator paused the rollout: no wave moves until it says otherwise) or "stop" (the rollout ends
    here and what it moved goes back). With a ``lock``, each wave moves holding it, so a workshop's
    levers never interleave with a wave; ``hold()`` is asked again once the lock is held.

    Each process moves under a lease of ``lease_s`` that ``keeper`` renews (``lease_s=None``:
    for good, only when asked for explicitly). A wave counts as moved before its requests are
    sent, so a process that applied the change but whose answer was lost is rolled back too.
    Any exception rolls back what moved: the expected ones (the guard, a stop, a process that
    refused, the lab or Prometheus not answering) end the rollout with ``rolled_back``; any
    other, Ctrl-C included, rolls back and is raised again."""
    result = RolloutResult(new.version, 0, len(waves))
    lease = {"lease_s": lease_s} if lease_s is not None else {"keep": True}
    body = {"architecture": new.model_dump(mode="json"), **lease}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            started = time.time()
            bake = Bake(control, session, prometheus_url, guard, guard_every_s, started)
            for i, wave in enumerate(waves, 1):
                await _held(hold, say, i, len(waves))
                if await control.halt_seen(started):
                    raise RolloutStopped(f"halted before wave {i}/{len(waves)}")
                async with holding(lock):
                    if lock is not None and hold() == "stop":
                        raise RolloutStopped(f"rollout stopped before wave {i}/{len(waves)}")
                    result.moved += [n for n in wave if n not in result.moved]
                    if keeper is not None and lease_s is not None:
                        keeper.hold(wave, new.version)
                    answers = await control.each("PUT", "/control/architecture", json=body, only=wave, timeout_s=3)
                failed = [f"{a.instance} ({a.body})" for a in answers if not a.ok]
                if failed:
                    raise LabError(f"wave {i} could not move {', '.join(failed)}")
                say(f"wave {i}/{len(waves)}: {', '.join(wave)} now run {new.version}")
                result.completed_waves = i
                result.wave_times.append(time.time())
                await bake.wait(bake_s if i < len(waves) else 0, f"wave {i}/{len(waves)}")
    except BaseException as e:
        result.rolled_back = True
        result.rolled_back_at = time.time()
        result.guard_breached = isinstance(e, GuardBreached)
        result.reason = str(e) or type(e).__name__
        await _put_back(control, result, say, keeper, lease_s)
        if not isinstance(e, ENDS_A_ROLLOUT):
            raise
    return result


@dataclass
class Bake:
    """Waiting after a wave, watching for a halt and asking the guard every ``guard_every_s``."""

    control: LabControl
    session: aiohttp.ClientSession
    prometheus_url: str
    guard: str | None
    guard_every_s: float
    started: float  # when the rollout started: a halt since then stops it

    async def wait(self, bake_s: float, wave: str) -> None:
        deadline = time.monotonic() + bake_s
        next_guard = time.monotonic() + self.guard_every_s
        next_remote = time.monotonic() + HALT_ASK_EVERY_S
        while time.monotonic() < deadline:
            await asyncio.sleep(min(HALT_CHECK_EVERY_S, max(0.0, deadline - time.monotonic())))
            # A halt ends the rollout now, not after the bake: halt has undone this wave already.
            # Here a file says so; a halt on another machine, the processes (asked less often).
            remote = time.monotonic() >= next_remote
            if remote:
                next_remote = time.monotonic() + HALT_ASK_EVERY_S
            if self.control.halted_since(self.started) or (remote and await self.control.halt_seen(self.started)):
                raise RolloutStopped(f"halted after {wave}")
            if self.guard and (time.monotonic() >= next_guard or time.monotonic() >= deadline):
                next_guard = time.monotonic() + self.guard_every_s
                breach = await guard_breached(self.session, self.prometheus_url, self.guard)
                if breach:
                    raise GuardBreached(f"guard breached after {wave.split('/')[0]} ({breach})")


async def _put_back(
    control: LabControl, result: RolloutResult, say: Say, keeper: LeaseKeeper | None, lease_s: float | None
) -> None:
    """Roll back what a broken-off rollout moved, and say what did not confirm."""
    if not result.moved:
        say(f"nothing had moved, so nothing goes back: {result.reason}")
        return
    say(f"rolling back {len(result.moved)} process(es): {result.reason}")
    # Shielded: a second Ctrl-C must not stop the rollback half way.
    stuck = await asyncio.shield(rollback(control, result.moved, keeper=keeper))
    if stuck:
        after = (
            f"their leases lapse within {lease_s:g} s"
            if lease_s is not None
            else "they keep the change (no lease): run `failwhale halt`"
        )
        say(f"warning: {', '.join(stuck)} did not confirm the rollback; {after}")


@contextlib.asynccontextmanager
async def holding(lock: threading.Lock | None):
    """Hold a thread lock from async code without blocking the event loop while waiting for it."""
    if lock is None:
        yield
        return
    await asyncio.to_thread(lock.acquire)
    try:
        yield
    finally:
        lock.release()


class GuardBreached(Exception):
    """The guard's PromQL returned something: the change is hurting users."""


class RolloutStopped(Exception):
    """Someone stopped the rollout between waves."""


# What ends a rollout with a result (rolled back, and why) instead of an exception: the guard,
# a stop, a process refusing the change, and the lab or Prometheus not answering in time.
ENDS_A_ROLLOUT = (
    GuardBreached,
    RolloutStopped,
    LabError,
    BadInput,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
    ValueError,
)


async def _held(hold: Hold, say: Say, wave: int, total: int) -> None:
    paused = False
    while (state := hold()) == "wait":
        if not paused:
            say(f"rollout paused before wave {wave}/{total}")
            paused = True
        await asyncio.sleep(0.25)
    if state == "stop":
        raise RolloutStopped(f"rollout stopped before wave {wave}/{total}")
    if paused:
        say(f"rollout resumed at wave {wave}/{total}")

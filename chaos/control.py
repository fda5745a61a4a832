"""Talk to every process's control plane at once: faults, architecture, status.

Only processes named in the lab config are ever addressed, always at the lab's own host and
ports: the chaos tools cannot be pointed at anything outside the lab.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from chaos.errors import BadInput, LabError
from chaos.lab.ports import AUX_PORTS
from services.architecture import Architecture
from services.common.app import read_token
from services.config import LabConfig

NOT_SERVICES = frozenset(AUX_PORTS)
HALT_FILE = "halted"  # in the lab's data folder: when `failwhale halt` last ran
# How long halt keeps asking processes that have not confirmed (a saturated lab answers late).
HALT_DEADLINE_S = 5.0


@dataclass(frozen=True)
class Answer:
    instance: str
    status: int  # 0: no answer
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class LabControl:
    def __init__(self, lab: LabConfig, arch: Architecture, token: str) -> None:
        self.lab, self.arch, self.token = lab, arch, token

    @classmethod
    def connect(cls, lab: LabConfig, arch: Architecture) -> LabControl:
        token = read_token(lab.token_path)
        if token is None:
            raise LabError(
                f"no control token at {lab.token_path}: is the lab running? (start it with `failwhale up`; "
                "for processes on other hosts, copy the lab's token there: docs/deploy.md)"
            )
        return cls(lab, arch, token)

    def mark_halted(self) -> None:
        """Record that halt ran now: rollouts in progress on this machine stop before their next wave."""
        try:
            (self.lab.data_path / HALT_FILE).write_text(f"{time.time()}\n", encoding="utf-8")
        except OSError:
            pass  # no lab folder here (a lab on other hosts): the processes tell rollouts instead

    def halted_since(self, t: float) -> bool:
        """Did halt run after ``t`` (wall clock), on this machine? (One file's time: cheap enough to
        ask twice a second.)"""
        try:
            return (self.lab.data_path / HALT_FILE).stat().st_mtime >= t
        except OSError:
            return False

    async def halt_seen(self, t: float) -> bool:
        """Did halt run after ``t`` (wall clock), here or on any machine? A halt elsewhere is
        learnt from the processes it put back: each says how long ago (its own clock, so the
        machines' clocks need not agree)."""
        if self.halted_since(t):
            return True
        elapsed = time.time() - t
        answers = await self.each("GET", "/control/architecture", timeout_s=1.0)
        return any(
            a.ok
            and isinstance(a.body, dict)
            and isinstance(ago := a.body.get("halted_s_ago"), (int, float))
            and ago <= elapsed
            for a in answers
        )

    def instances(self, only: list[str] | None = None) -> list[str]:
        known = [name for name in self.arch.instance_kinds() if name in self.lab.ports and name not in NOT_SERVICES]
        if only:
            unknown = sorted(set(only) - set(known))
            if unknown:
                raise BadInput(f"not part of the lab: {', '.join(unknown)} (known: {', '.join(known)})")
            return [n for n in known if n in only]
        return known

    async def each(
        self, method: str, path: str, *, json: Any = None, only: list[str] | None = None, timeout_s: float = 0.8
    ) -> list[Answer]:
        """Send one request to every (or each named) process in parallel."""
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=timeout_s)

        async def one(session: aiohttp.ClientSession, name: str) -> Answer:
            try:
                async with session.request(method, self.lab.url(name) + path, json=json, headers=headers) as resp:
                    return Answer(name, resp.status, await resp.json(content_type=None))
            except (TimeoutError, aiohttp.ClientError, ValueError) as e:
                return Answer(name, 0, f"{type(e).__name__}: {e}".rstrip(": "))

        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(one(session, n) for n in self.instances(only))))


Ask = Callable[[list[str], float], Awaitable[dict[str, Answer]]]


async def until_confirmed(
    ask: Ask, names: list[str], deadline_s: float, *, max_timeout_s: float, pause_s: float
) -> dict[str, Answer]:
    """Call ``ask(pending, timeout_s)`` again for the processes whose answer was not ok, until
    each confirms or ``deadline_s`` has passed; every process's last answer. A saturated lab
    answers late: asking again is what makes an undo land (halt's and a rollback's loop)."""
    deadline = time.monotonic() + deadline_s
    last: dict[str, Answer] = {}
    pending = list(names)
    while pending:
        last.update(await ask(pending, max(0.2, min(max_timeout_s, deadline - time.monotonic()))))
        pending = [name for name in pending if not last[name].ok]
        if not pending or time.monotonic() >= deadline:
            break
        await asyncio.sleep(pause_s)
    return last


async def halt(control: LabControl, deadline_s: float = HALT_DEADLINE_S) -> list[Answer]:
    """Stop every rollout in progress, remove every fault and put every process back on its
    baseline architecture, asking again whoever has not confirmed until ``deadline_s``. One
    answer per process: its last, so an answer that is not ok names one still not halted."""
    control.mark_halted()
    removed: dict[str, int] = {}

    async def ask(pending: list[str], timeout_s: float) -> dict[str, Answer]:
        faults, baseline = await asyncio.gather(
            control.each("DELETE", "/control/faults", only=pending, timeout_s=timeout_s),
            control.each("POST", "/control/architecture/baseline?halt=1", only=pending, timeout_s=timeout_s),
        )
        answers = {}
        for f, b in zip(faults, baseline, strict=True):
            if f.ok:  # faults removed in an earlier round still count
                removed[f.instance] = removed.get(f.instance, 0) + int(f.body.get("removed", 0))
            # The first of the two that failed, else both answers in one.
            answers[f.instance] = (
                f
                if not f.ok
                else (b if not b.ok else Answer(f.instance, 200, {**f.body, **b.body, "removed": removed[f.instance]}))
            )
        return answers

    done = await until_confirmed(ask, control.instances(), deadline_s, max_timeout_s=1.0, pause_s=0.1)
    return [done[name] for name in control.instances()]

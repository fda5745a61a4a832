"""Talk to every process's control plane at once: faults, architecture, status.

Only processes named in the lab config are ever addressed, always at the lab's own host and
ports: the chaos tools cannot be pointed at anything outside the lab.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from chaos.errors import BadInput, LabError
from chaos.lab.ports import AUX_PORTS
from services.architecture import Architecture
from services.common.app import read_token
from services.config import LabConfig

NOT_SERVICES = frozenset(AUX_PORTS)


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
            raise LabError(f"no control token at {lab.token_path}: is the lab running? (start it with `failwhale up`)")
        return cls(lab, arch, token)

    def instances(self, only: list[str] | None = None) -> list[str]:
        known = [name for name in self.arch.instance_kinds() if name in self.lab.ports and name not in NOT_SERVICES]
        if only:
            unknown = sorted(set(only) - set(known))
            if unknown:
                raise BadInput(f"not part of the lab: {', '.join(unknown)} (known: {', '.join(known)})")
            return [n for n in known if n in only]
        return known

    async def each(self, method: str, path: str, *, json: Any = None, only: list[str] | None = None,
                   timeout_s: float = 0.8) -> list[Answer]:
        """Send one request to every (or each named) process in parallel."""
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=timeout_s)

        async def one(session: aiohttp.ClientSession, name: str) -> Answer:
            try:
                async with session.request(method, self.lab.url(name) + path, json=json, headers=headers) as resp:
                    return Answer(name, resp.status, await resp.json(content_type=None))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                return Answer(name, 0, f"{type(e).__name__}: {e}".rstrip(": "))

        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(one(session, n) for n in self.instances(only))))


async def halt(control: LabControl) -> list[Answer]:
    """Remove every fault and put every process back on its baseline architecture."""
    faults, baseline = await asyncio.gather(
        control.each("DELETE", "/control/faults"),
        control.each("POST", "/control/architecture/baseline"),
    )
    return [b if not f.ok else (f if not b.ok else Answer(f.instance, 200, {**f.body, **b.body}))
            for f, b in zip(faults, baseline, strict=True)]

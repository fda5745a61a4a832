"""The public status page: what the company tells users about itself, fed only by health checks.

A background task asks every process of the architecture for ``/readyz`` every second, as a
hosted status page's uptime checks do, and ``/status`` says "All systems operational" when all of
them answered ready. It knows nothing of users' journeys: that blind spot is what the lab shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from services.common.app import CONTEXT

CHECK_EVERY_S = 1.0
CHECK_TIMEOUT_S = 0.8


@dataclass
class Status:
    components: dict[str, bool] = field(default_factory=dict)
    checked_at: float = 0.0

    @property
    def operational(self) -> bool:
        return bool(self.components) and all(self.components.values())

    def as_json(self) -> dict:
        return {
            "status": "operational" if self.operational else "degraded",
            "description": "All systems operational" if self.operational
            else f"Degraded: {', '.join(sorted(n for n, ok in self.components.items() if not ok))}",
            "components": {n: "operational" if ok else "down" for n, ok in sorted(self.components.items())},
            "checked_at": self.checked_at,
        }


STATUS = web.AppKey("status_page", Status)


async def _ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/readyz") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


async def _check(app: web.Application, session: aiohttp.ClientSession) -> None:
    ctx = app[CONTEXT]
    names = [n for n in ctx.arch.instance_kinds() if n != ctx.instance]
    answers = await asyncio.gather(*(_ready(session, ctx.lab.url(n)) for n in names))
    app[STATUS].components = {ctx.instance: True, **dict(zip(names, answers, strict=True))}
    app[STATUS].checked_at = time.time()


async def checker(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the health-check loop lives exactly as long as the app."""
    app[STATUS] = Status()

    async def loop() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)) as session:
            while True:
                await _check(app, session)
                await asyncio.sleep(CHECK_EVERY_S)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATUS].as_json())


async def status_html(request: web.Request) -> web.Response:
    data = request.app[STATUS].as_json()
    colour = "#1a7f37" if data["status"] == "operational" else "#b35900"
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(s)}</td></tr>" for n, s in data["components"].items())
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Status</title>"
        "<meta http-equiv=refresh content=5></head><body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        f"<h1 id=status style='color:{colour}'>{html.escape(data['description'])}</h1>"
        f"<table>{rows}</table><p><small>From health checks of every process, every second.</small></p></body></html>"
    )
    return web.Response(text=page, content_type="text/html")

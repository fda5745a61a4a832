"""The public status page: what the company tells users about itself, fed by health checks and
by whatever its people post.

A background task asks every process of the architecture for ``/readyz`` every second, as a
hosted status page's uptime checks do, and ``/status`` says "All systems operational" when all of
them answered ready. It knows nothing of users' journeys: that blind spot is what the lab shows.
Only a person can close it: an update posted through the control plane (``POST
/control/status``, the workshop's ``status`` lever) shows until one marked ``resolved`` follows.
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

from services.common.app import CONTEXT, read_json, require_control
from services.common.jsonbody import json_response
from services.errors import BadRequest

CHECK_EVERY_S = 1.0
CHECK_TIMEOUT_S = 0.8


UPDATE_STATES = ("investigating", "identified", "monitoring", "resolved")
MAX_UPDATES = 50  # the page keeps the newest; a workshop posts a handful
MAX_UPDATE_CHARS = 280


@dataclass
class Status:
    components: dict[str, bool] = field(default_factory=dict)
    checked_at: float = 0.0
    updates: list[dict] = field(default_factory=list)  # newest last: {"state", "text", "at"}

    @property
    def operational(self) -> bool:
        return bool(self.components) and all(self.components.values())

    @property
    def incident(self) -> dict | None:
        """The update people see, while the newest one is not marked resolved."""
        return self.updates[-1] if self.updates and self.updates[-1]["state"] != "resolved" else None

    def as_json(self) -> dict:
        if self.incident is not None:
            status, description = "incident", f"{self.incident['state'].capitalize()}: {self.incident['text']}"
        elif self.operational:
            status, description = "operational", "All systems operational"
        else:
            status = "degraded"
            description = f"Degraded: {', '.join(sorted(n for n, ok in self.components.items() if not ok))}"
        return {
            "status": status,
            "description": description,
            "components": {n: "operational" if ok else "down" for n, ok in sorted(self.components.items())},
            "checked_at": self.checked_at,
            "updates": list(reversed(self.updates)),
        }


STATUS = web.AppKey("status_page", Status)


async def _ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(f"{url}/readyz") as resp:
            return resp.status == 200
    except (TimeoutError, aiohttp.ClientError):
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
    return json_response(request.app[STATUS].as_json())


async def post_update(request: web.Request) -> web.Response:
    """Post a status update: ``{"state": "investigating", "text": "..."}`` (control token needed)."""
    require_control(request)
    body = await read_json(request)
    state = body.get("state", "investigating")
    text = body.get("text")
    if state not in UPDATE_STATES:
        raise BadRequest(f"'state' must be one of {', '.join(UPDATE_STATES)}, not {state!r}")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_UPDATE_CHARS:
        raise BadRequest(f"'text' must be a non-empty string of at most {MAX_UPDATE_CHARS} characters")
    updates = request.app[STATUS].updates
    updates.append({"state": state, "text": text.strip(), "at": time.time()})
    del updates[:-MAX_UPDATES]
    return json_response(request.app[STATUS].as_json())


async def status_html(request: web.Request) -> web.Response:
    data = request.app[STATUS].as_json()
    colour = {"operational": "#1a7f37", "incident": "#b42318"}.get(data["status"], "#b35900")
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(s)}</td></tr>" for n, s in data["components"].items()
    )
    posts = "".join(
        f"<li><b>{html.escape(u['state'].capitalize())}</b> ({time.strftime('%H:%M:%S', time.localtime(u['at']))}): "
        f"{html.escape(u['text'])}</li>"
        for u in data["updates"]
    )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Status</title>"
        "<meta http-equiv=refresh content=5></head><body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        f"<h1 id=status style='color:{colour}'>{html.escape(data['description'])}</h1>"
        + (f"<h2>Updates</h2><ul id=updates>{posts}</ul>" if posts else "")
        + f"<table>{rows}</table><p><small>From health checks of every process, every second, "
        "and from the updates our people post.</small></p></body></html>"
    )
    return web.Response(text=page, content_type="text/html")

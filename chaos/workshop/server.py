"""The levers' web server: the levers page, the list of levers it is built from, and the pulls.

``GET /`` is the page (``chaos/static/levers.html``; it holds no secret), ``GET /levers`` lists
every lever with its arguments (:func:`chaos.workshop.levers.listing`), and ``POST /levers/NAME``
pulls one with the room's token, or ends the game with the facilitator's. A bad request is one
line in ``{"error": ...}``: 400 for what the request got wrong, 401/403 for a token, 409 while the
lab is still starting. It runs on a thread of its own beside the runner's timeline
(:class:`LeverServer`), and answers only Host headers naming it (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from chaos.workshop.actions import Levers
from chaos.workshop.levers import LeverAnswer, listing, parse_args
from chaos.workshop.room import LabStarting, WorkshopError
from dashboards.app import DashboardConfig
from dashboards.app import create_app as create_dashboard
from services.common.hosts import Handler, host_check

LEVERS_KEY = web.AppKey("levers", Levers)
TOKEN_KEY = web.AppKey("token", str)
FACILITATOR_TOKEN_KEY = web.AppKey("facilitator_token", str)
DASHBOARD_KEY = web.AppKey("dashboard_url", str)
PAGE = Path(__file__).parent.parent / "static" / "levers.html"


def _error(text: str, status: int) -> web.Response:
    return web.json_response({"error": text}, status=status)


def _bearer(request: web.Request, token: str) -> bool:
    return hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode())


def _unauthorised(request: web.Request, lever: str) -> web.Response | None:
    """Why this request may not pull ``lever``, or None. The room's token is in every participant's
    link; ending the game is the facilitator's call, with a token only their terminal reads."""
    if lever == "end" and not _bearer(request, request.app[FACILITATOR_TOKEN_KEY]):
        return _error(
            "only the facilitator ends the game: it needs the facilitator's token, "
            "not the room's (failwhale workshop end reads it)",
            403 if _bearer(request, request.app[TOKEN_KEY]) else 401,
        )
    if lever != "end" and not _bearer(request, request.app[TOKEN_KEY]):
        return _error("missing or wrong workshop token (Authorization: Bearer ...)", 401)
    return None


async def _body(request: web.Request) -> dict[str, object] | web.Response:
    """The request's JSON object, or the 400 that says why it is not one."""
    try:
        body = await request.json()
    except RecursionError:  # json.loads recurses once per level: [[[[...
        return _error("the body nests too deeply", 400)
    except ValueError:  # also an integer of more than 4,300 digits
        return _error("the body must be JSON", 400)
    if not isinstance(body, dict):
        return _error("the body must be a JSON object", 400)
    return body


def _answer(answer: LeverAnswer) -> web.Response:
    return web.json_response(answer.model_dump(exclude_none=True))


async def _pull(request: web.Request) -> web.Response:
    lever = request.match_info["lever"]
    refused = _unauthorised(request, lever)
    if refused is not None:
        return refused
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    who = str(body.pop("who", "") or "someone")[:40]
    levers = request.app[LEVERS_KEY]
    if lever == "end":
        ending = not levers.game.over()
        if ending:
            levers.end(who, "the game ends")
        note = "the workshop is ending" if ending else "the workshop was already ending"
        return _answer(LeverAnswer(lever="end", who=who, note=note, run_dir=str(levers.runner.run_dir)))
    try:
        args = parse_args(lever, body)  # what the lever takes: a bad argument is a 400 here
        return _answer(await levers.pull(lever, who, args))
    except LabStarting as e:
        return _error(str(e), 409)
    except WorkshopError as e:
        return _error(str(e), 400)


async def _page(request: web.Request) -> web.FileResponse:
    # The page itself holds no secret: every pull it makes needs the token.
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"levers": listing(), "dashboard": request.app[DASHBOARD_KEY]})


def _misdirected(host: str) -> web.Response:
    return _error(f"this is the workshop's levers, not {host}", 421)


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


@dataclass(frozen=True)
class Site:
    """One address the lever server answers on, with the app it serves there."""

    app: web.Application
    host: str
    port: int
    what: str = "the workshop's levers"


ROOM_COOKIE = "failwhale_room"


def room_app(levers: Levers, token: str, prometheus_url: str, address: tuple[str, int]) -> web.Application:
    """What participants' own browsers reach on the room's address: the live dashboard at ``/`` and
    the levers page at ``/levers.html``, every request behind the room's token.

    The room's link (``/?token=...``) sets the token as a cookie, so the dashboard's own queries
    carry it; a pull also needs it as a Bearer header, which the levers page sends (a cookie alone
    never pulls a lever: no other site can make a browser pull one). Ending the game is not
    served here: the facilitator ends it from their own terminal. The dashboard forwards only
    Prometheus's two read endpoints, from this process, to a Prometheus that stays on loopback.
    """
    app = create_dashboard(DashboardConfig(prometheus_url=prometheus_url, address=address))
    app.middlewares.append(_room_token(token))
    app[LEVERS_KEY] = levers
    app[TOKEN_KEY] = token
    # A token nobody holds: `end` is refused here, whoever asks.
    app[FACILITATOR_TOKEN_KEY] = secrets.token_urlsafe(24)
    app[DASHBOARD_KEY] = "/"
    app.router.add_get("/levers.html", _page)
    app.router.add_get("/levers", _list)
    app.router.add_post("/levers/{lever}", _pull)
    return app


def _room_token(token: str) -> Callable:
    """A middleware admitting only requests with the room's token (Bearer, cookie, or the link's
    ``?token=``, which becomes the cookie)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            # The link: keep the token as a cookie and go on without it in the address bar.
            target = "/levers.html" if request.path == "/levers.html" else "/"
            resp = web.Response(status=303, headers={"Location": target})
            # Lax, not Strict: a link opened from a chat or a mail is a cross-site navigation, and
            # Strict would withhold the cookie from its redirect. Pulls need the Bearer token anyway.
            resp.set_cookie(ROOM_COOKIE, token, httponly=True, samesite="Lax", path="/")
            return resp
        cookie = request.cookies.get(ROOM_COOKIE, "")
        if _bearer(request, token) or (cookie and hmac.compare_digest(cookie.encode(), token.encode())):
            return await handler(request)
        return _error("this workshop room needs its token: open the link the facilitator shared", 401)

    return check


class LeverServer:
    """The lever apps (the facilitator's, and the room's if any) on one thread and event loop of
    their own, beside the runner's timeline: every pull, from either, runs on this loop."""

    def __init__(self, *sites: Site) -> None:
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        try:
            for site in sites:
                runner = web.AppRunner(site.app, access_log=None)
                self.loop.run_until_complete(runner.setup())
                self.runners.append(runner)
                try:
                    self.loop.run_until_complete(web.TCPSite(runner, site.host, site.port).start())
                except OSError as e:
                    where = f"{f'[{site.host}]' if ':' in site.host else site.host}:{site.port}"
                    raise WorkshopError(f"{site.what} cannot listen on {where}: {e.strerror or e}") from e
        except BaseException:
            self._cleanup()
            raise
        self.thread = threading.Thread(target=self.loop.run_forever, name="levers", daemon=True)
        self.thread.start()

    def _cleanup(self) -> None:
        for runner in self.runners:
            self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self._cleanup()

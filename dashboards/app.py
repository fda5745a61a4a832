"""The built-in live dashboard: a page, the panel spec as JSON, and a read-only window on Prometheus.

The page (``static/``) draws every panel of ``panels.yaml`` with uPlot, vendored in
``static/vendor/uplot``, and asks this server for data. This server forwards only Prometheus's
two read endpoints, ``/api/v1/query`` and ``/api/v1/query_range``, so the page needs no
cross-origin access and can never change anything in Prometheus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from dashboards.errors import DashboardError
from dashboards.spec import Spec, default_spec
from services.common.hosts import host_check

STATIC = Path(__file__).with_name("static")
PROMETHEUS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DashboardConfig:
    prometheus_url: str
    spec: Spec = field(default_factory=default_spec)
    # Where the dashboard listens: it answers only Host headers naming this (services/common/hosts.py).
    # None (in-process tests): no check.
    address: tuple[str, int] | None = None


CONFIG = web.AppKey("config", DashboardConfig)
SESSION = web.AppKey("prometheus_session", aiohttp.ClientSession)


def board_json(spec: Spec, board_id: str) -> dict:
    """What the page needs to draw one dashboard: its panels, the marks and the clock."""
    board = spec.board(board_id)
    return {
        "board": board.model_dump(),
        "boards": [b.model_dump() for b in spec.dashboards],
        "refresh_s": spec.refresh_s,
        "window_s": spec.window_s,
        "clock": spec.clock,
        "annotations": [a.model_dump() for a in spec.annotations],
        "panels": [p.model_dump() for p in spec.panels_of(board_id)],
    }


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def panels(request: web.Request) -> web.Response:
    board_id = request.query.get("board", "overview")
    try:
        return web.json_response(board_json(request.app[CONFIG].spec, board_id))
    except DashboardError as e:
        return web.json_response({"error": str(e)}, status=404)


async def prometheus(request: web.Request) -> web.Response:
    """Forward a read query to Prometheus and return its answer unchanged."""
    endpoint = request.match_info["endpoint"]
    base = request.app[CONFIG].prometheus_url
    try:
        async with request.app[SESSION].get(f"{base}/api/v1/{endpoint}", params=request.query) as resp:
            body = await resp.read()
            return web.Response(body=body, status=resp.status, content_type="application/json")
    except (TimeoutError, aiohttp.ClientError) as e:
        return web.json_response(
            {
                "status": "error",
                "errorType": "unavailable",
                "error": f"Prometheus at {base} did not answer: {e.__class__.__name__}",
            },
            status=502,
        )


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def prometheus_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=PROMETHEUS_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[SESSION] = session
        yield


async def no_stale_files(request: web.Request, response: web.StreamResponse) -> None:
    # The page and its script change together: a browser must not keep an old script.
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"


def misdirected(host: str) -> web.Response:
    return web.json_response(
        {"status": "error", "errorType": "misdirected", "error": f"This is not {host}"}, status=421
    )


def create_app(config: DashboardConfig) -> web.Application:
    app = web.Application(middlewares=[host_check(*config.address, misdirected)] if config.address else [])
    app[CONFIG] = config
    app.on_response_prepare.append(no_stale_files)
    app.cleanup_ctx.append(prometheus_session)
    app.router.add_get("/", index)
    app.router.add_get("/panels.json", panels)
    app.router.add_get(r"/api/v1/{endpoint:query|query_range}", prometheus)
    app.router.add_get("/healthz", ready)
    app.router.add_get("/readyz", ready)
    app.router.add_static("/static/", STATIC)
    return app

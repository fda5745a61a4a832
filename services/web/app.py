"""Web frontend app: the desktop page, its static files, its manifest, the /api/ proxy, and the
public status page (``/status``, see ``status.py``).

The browser talks only to this origin: the page's ``/api/...`` calls are passed to the edge
unchanged, so the web and the app reach the very same API tier.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from aiohttp import web

from services.common.app import CONTEXT, UPSTREAM, ServiceContext, create_service_app, name_route
from services.common.jsonbody import json_response
from services.common.upstream import forward_headers, respond
from services.web.pages import Manifest, load_manifest
from services.web.status import checker, post_update, status_html, status_json

STATIC = Path(__file__).with_name("static")
MANIFEST = web.AppKey("page_manifest", Manifest)
INDEX = web.AppKey("index_html", bytes)


async def index(request: web.Request) -> web.Response:
    return web.Response(body=request.app[INDEX], content_type="text/html", charset="utf-8")


async def manifest(request: web.Request) -> web.Response:
    return json_response(request.app[MANIFEST].model_dump())


async def api_proxy(request: web.Request) -> web.StreamResponse:
    name_route("api_proxy")
    upstream = request.app[CONTEXT].arch.web.api
    body = await request.read() if request.can_read_body else None
    resp = await request.app[UPSTREAM].call(
        upstream,
        request.method,
        request.rel_url.raw_path,
        name="edge",
        body=body,
        query=request.rel_url.raw_query_string,
        headers=forward_headers(request),
    )
    return respond(resp)


def render_index(m: Manifest) -> bytes:
    template = (STATIC / "index.html").read_text(encoding="utf-8")
    # Embedded as JSON in a script tag: "</" must not appear raw inside it.
    data = json.dumps(m.model_dump()).replace("</", "<\\/")
    page = template.replace("{{MANIFEST_JSON}}", data).replace("{{ERROR_MESSAGE}}", html.escape(m.error_message))
    return page.encode("utf-8")


def create_app(ctx: ServiceContext) -> web.Application:
    routes = [
        web.get("/", index),
        web.get("/pages.json", manifest),
        web.get("/status", status_html),
        web.get("/status.json", status_json),
        web.post("/control/status", post_update),
        web.route("*", "/api/{tail:.*}", api_proxy),
        web.static("/static", STATIC),
    ]
    app = create_service_app(ctx, routes, cleanup=[checker])
    m = load_manifest()
    app[MANIFEST] = m
    app[INDEX] = render_index(m)
    return app

"""API replica app: match the public route, check the token, forward to the owning backend.

The route table comes from the architecture this replica runs, so a rollout can re-route,
re-time or re-limit the API one replica at a time. A replica trusts a token it has verified
for ``token_cache_ttl_s``: a client that keeps one token (the app) costs auth almost nothing,
while a client that gets a fresh token for every page (the web) makes auth check each one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter

from services.architecture.model import Architecture, Route, compile_path
from services.common.app import (
    CACHES,
    CONTEXT,
    METRICS,
    UPSTREAM,
    CacheOps,
    ServiceContext,
    create_service_app,
    name_route,
)
from services.common.clients import CLIENT_HEADER, client_class
from services.common.jsonbody import dumps
from services.common.upstream import UpstreamResponse, respond
from services.errors import MethodNotAllowed, NotFound, ServiceError, Unauthorized

TOKEN_CACHE_MAX = 100_000
CATCH_ALL = "/{tail}"


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


class RouteTable:
    def __init__(self, arch: Architecture) -> None:
        self.routes = [CompiledRoute(r, compile_path(r.path)) for r in arch.api.routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for c in self.routes:
            m = c.pattern.match(path)
            if m is None:
                continue
            if c.route.method == method:
                return c.route, m.groupdict()
            allowed.append(c.route.method)
        if allowed:
            allow = ", ".join(sorted(set(allowed)))
            raise MethodNotAllowed(f"{method} is not allowed here; use {allow}", headers={"Allow": allow})
        raise NotFound()


ROUTES = web.AppKey("api_routes", list)
TOKENS = web.AppKey("api_token_cache", dict)
TOKEN_CHECKS = web.AppKey("api_token_checks", dict)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and len(header) > 7:
        return header[7:]
    return None


async def _identify(request: web.Request, route: Route) -> str:
    """The user a request acts as ("guest" for guest tokens); raises for a missing or bad token."""
    if route.auth == "none":
        return "guest"
    token = _bearer(request)
    if token is None:
        raise Unauthorized("Missing token: send 'Authorization: Bearer <token>'")
    app = request.app
    arch = app[CONTEXT].arch
    cache = app[TOKENS]
    checks = app[TOKEN_CHECKS]
    now = time.monotonic()
    hit = cache.get(token)
    if hit is not None and hit[0] > now:
        checks["cached"].inc()
        user = hit[1]
    else:
        checks["verified"].inc()
        resp = await app[UPSTREAM].call(
            arch.api.upstreams["auth"],
            "POST",
            "/internal/verify",
            name="auth",
            body=dumps({"token": token}),
            headers={"Content-Type": "application/json", **_client_headers(request)},
        )
        if resp.status != 200:
            raise PassThrough(resp)
        user = resp.json()["user"]
        if len(cache) >= TOKEN_CACHE_MAX:
            cache.clear()
        cache[token] = (now + arch.api.token_cache_ttl_s, user)
    if route.auth == "user" and user == "guest":
        raise Unauthorized("This needs a logged-in user, not a guest token")
    return user


def _client_headers(request: web.Request) -> dict[str, str]:
    return {CLIENT_HEADER: client_class(request.headers), "User-Agent": request.headers.get("User-Agent", "")}


class PassThrough(Exception):
    """A backend's own error answer, returned to the caller as it is (status, body, Retry-After)."""

    def __init__(self, resp: UpstreamResponse) -> None:
        super().__init__(resp.status)
        self.resp = resp


async def dispatch(request: web.Request) -> web.StreamResponse:
    table: RouteTable = request.app[ROUTES][0]
    try:
        route, params = table.match(request.method, request.rel_url.raw_path)
    except ServiceError:
        name_route("unmatched")
        raise
    name_route(route.name)
    try:
        user = await _identify(request, route)
    except PassThrough as e:
        return respond(e.resp)
    upstream = request.app[CONTEXT].arch.api.upstreams[route.upstream]
    headers = {**_client_headers(request), "X-User": user}
    if "Content-Type" in request.headers:
        headers["Content-Type"] = request.headers["Content-Type"]
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    body = await request.read() if request.can_read_body else None
    resp = await request.app[UPSTREAM].call(
        upstream,
        request.method,
        route.upstream_path.format(**params),
        name=route.upstream,
        body=body,
        query=request.rel_url.raw_query_string,
        headers=headers,
    )
    if route.revokes_token and resp.status < 300:
        # Other replicas may trust the token until their cache entry lapses, as in real fleets.
        request.app[TOKENS].pop(_bearer(request), None)
    return respond(resp)


def _flush_tokens(app: web.Application) -> int:
    n = len(app[TOKENS])
    app[TOKENS].clear()
    return n


def create_app(ctx: ServiceContext) -> web.Application:
    # A one-slot list so a swap can replace the table without touching the frozen app.
    table = [RouteTable(ctx.arch)]

    def route_of(request: web.Request) -> str:
        """The architecture's name for a request's route (faults can target e.g. home_timeline)."""
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical != CATCH_ALL:
            return resource.canonical  # the skeleton's own routes: /healthz, /metrics, /control/...
        try:
            return table[0].match(request.method, request.rel_url.raw_path)[0].name
        except ServiceError:
            return "unmatched"

    app = create_service_app(ctx, [], catch_all=dispatch, route_of=route_of)
    app[ROUTES] = table
    app[TOKENS] = {}
    # Flushing it makes every client's next call verify its token with auth again.
    app[CACHES]["tokens"] = CacheOps(flush=lambda: _flush_tokens(app))

    def on_change(_old: Architecture, new: Architecture) -> None:
        table[0] = RouteTable(new)

    ctx.architecture.on_change(on_change)
    m = app[METRICS]
    checks = Counter(
        "failwhale_api_token_checks_total",
        "Token checks by an API replica: answered from its cache, or verified with auth.",
        ["service", "replica", "result"],
        registry=m.registry,
    )
    app[TOKEN_CHECKS] = {k: checks.labels(m.service, m.replica, k) for k in ("cached", "verified")}
    return app

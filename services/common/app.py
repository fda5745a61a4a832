"""The service skeleton: context, middlewares, health/metrics/control routes, JSON helpers.

A service module builds its app with :func:`create_service_app`, passing its own routes and
resources; everything common to all services (client-class metrics, JSON errors, ``/healthz``,
``/readyz``, ``/metrics``, the authenticated control plane) lives here, once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.architecture.model import Architecture, ArchitectureState, parse_architecture
from services.common.clients import client_class
from services.common.faults import FaultCollector, FaultSpec, FaultStore, canonical_route, fault_middleware
from services.common.metrics import HttpMetrics
from services.common.upstream import UpstreamClient
from services.config import LabConfig
from services.common.yamlconf import validate
from services.errors import BadRequest, ConfigError, NotFound, ServiceError, Unauthorized

log = logging.getLogger("failwhale.services")

# Tweets and control documents are small; anything larger is refused with 413.
MAX_BODY_BYTES = 256 * 1024


@dataclass
class ServiceContext:
    """What one service process is: its instance name and kind, the lab, and its architecture."""

    instance: str
    kind: str
    lab: LabConfig
    architecture: ArchitectureState
    control_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> Architecture:
        return self.architecture.current


CONTEXT = web.AppKey("context", ServiceContext)
METRICS = web.AppKey("metrics", HttpMetrics)
UPSTREAM = web.AppKey("upstream", UpstreamClient)
READY = web.AppKey("ready", asyncio.Event)
FAULTS = web.AppKey("faults", FaultStore)


@dataclass
class CacheOps:
    """What an operator can do to one of a service's caches: empty it, or fill it ahead of users."""

    flush: Callable[[], int]  # returns the entries dropped
    warm: Callable[[], Awaitable[int]] | None = None  # returns the entries built


CACHES = web.AppKey("caches", dict[str, CacheOps])

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

# Set by handlers that route by themselves (API replicas, proxies) to name the route in metrics.
ROUTE_LABEL = web.RequestKey("route", str)


def read_token(path: Path) -> str | None:
    """The control-plane token, or None when the lab did not create one (control disabled)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def error_body(message: str, code: int) -> dict[str, Any]:
    return {"errors": [{"message": message, "code": code}]}


def json_error(
    status: int, message: str, code: int, retry_after: float | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return web.json_response(error_body(message, code), status=status, headers=headers)


def metrics_middleware(metrics: HttpMetrics, route_of: Callable[[web.Request], str] = canonical_route) -> Middleware:
    """Count and time every request; a closure so the hot path does no app lookups.

    The route label is what the handler set, else ``route_of`` (e.g. when a fault answered first).
    """
    observe = metrics.observe_request
    clock = time.perf_counter

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = clock()
        metrics.in_flight += 1
        status = 500
        try:
            resp = await handler(request)
            # The handler finished, but its caller hung up first: an answer nobody receives.
            transport = request.transport
            status = 499 if transport is None or transport.is_closing() else resp.status
            return resp
        except web.HTTPException as e:
            status = e.status
            raise
        except asyncio.CancelledError:
            status = 499  # the caller went away (nginx's convention)
            raise
        finally:
            metrics.in_flight -= 1
            route = request.get(ROUTE_LABEL)
            if route is None:
                route = route_of(request)
            observe(route, request.method, status, client_class(request.headers), clock() - start)

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors and aiohttp's own HTTP errors become JSON; nothing escapes as a bare 500."""
    try:
        return await handler(request)
    except ServiceError as e:
        return json_error(e.status, e.message, e.code, e.retry_after, e.headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        return json_error(e.status, e.reason, 0, headers=allow)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return json_error(500, "Internal error", 131)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest/413 saying what is wrong with it."""
    raw = await request.read()  # raises HTTPRequestEntityTooLarge beyond client_max_size
    if not raw:
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"Request body is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    return data


def require_control(request: web.Request) -> None:
    token = request.app[CONTEXT].control_token
    given = request.headers.get("Authorization", "")
    if token is None:
        raise Unauthorized("Control plane is disabled: the lab created no token file")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
        raise Unauthorized("Control plane needs 'Authorization: Bearer <token>' with the lab's token")


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    return web.json_response({"status": "alive", "service": ctx.kind, "replica": ctx.instance})


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    ready = request.app[READY].is_set()
    body = {"ready": ready, "service": ctx.kind, "replica": ctx.instance, "version": ctx.arch.version}
    return web.json_response(body, status=200 if ready else 503)


async def metrics_view(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_architecture(request: web.Request) -> web.Response:
    require_control(request)
    state = request.app[CONTEXT].architecture
    # The whole document too, so a change can start from what runs now (a workshop's levers).
    return web.json_response({"version": state.current.version, "baseline": state.baseline.version,
                              "architecture": state.current.model_dump(mode="json")})


async def put_architecture(request: web.Request) -> web.Response:
    """Move this process to another architecture version (validated whole before it applies)."""
    require_control(request)
    body = await read_json(request)
    if "architecture" not in body:
        raise BadRequest("Body needs an 'architecture' field holding the architecture document")
    ctx = request.app[CONTEXT]
    try:
        new = parse_architecture(body["architecture"], where="request body")
    except ConfigError as e:
        raise BadRequest(str(e)) from e
    if new.instance_kinds().get(ctx.instance) != ctx.kind:
        raise BadRequest(f"Architecture {new.version} has no {ctx.kind} instance named {ctx.instance!r}")
    old = ctx.architecture.swap(new)
    request.app[METRICS].set_version(new.version)
    log.info("%s moved from architecture %s to %s", ctx.instance, old.version, new.version)
    return web.json_response({"version": new.version, "previous": old.version})


async def restore_baseline(request: web.Request) -> web.Response:
    """Put this process back on the architecture it started with (rollback, halt)."""
    require_control(request)
    ctx = request.app[CONTEXT]
    old = ctx.architecture.swap(ctx.architecture.baseline)
    request.app[METRICS].set_version(ctx.arch.version)
    return web.json_response({"version": ctx.arch.version, "previous": old.version})


async def cache_op(request: web.Request) -> web.Response:
    """Flush or warm every cache this process registered (or the one ``?name=`` names):
    ``{"caches": {name: entries}}``."""
    require_control(request)
    op = request.match_info["op"]
    caches = request.app[CACHES]
    if "name" in request.query:  # one cache by name; a process without it has nothing to do
        caches = {n: c for n, c in caches.items() if n == request.query["name"]}
    if op == "flush":
        done = {name: c.flush() for name, c in caches.items()}
    elif op == "warm":
        done = {name: await c.warm() for name, c in caches.items() if c.warm is not None}
    else:
        raise NotFound(f"No cache operation {op!r}: use flush or warm")
    return web.json_response({"op": op, "caches": done})


# What an injected error says: the words the real API used for these statuses.
_FAULT_MESSAGES = {429: "Rate limit exceeded", 500: "Internal error", 502: "Upstream error",
                   503: "Over capacity", 504: "Upstream timed out"}


def _fault_view(f, now: float) -> dict[str, Any]:
    # kind has no default, so exclude_defaults keeps it.
    return {"id": f.id, "expires_in_s": round(f.remaining(now), 3), **f.spec.model_dump(exclude_defaults=True)}


async def list_faults(request: web.Request) -> web.Response:
    require_control(request)
    now = time.monotonic()
    return web.json_response({"faults": [_fault_view(f, now) for f in request.app[FAULTS].active()]})


async def add_faults(request: web.Request) -> web.Response:
    """Apply faults: ``{"faults": [spec, ...]}``. All are validated first; none or all apply."""
    require_control(request)
    body = await read_json(request)
    raw = body.get("faults")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("Body needs a non-empty 'faults' list")
    specs = []
    for i, item in enumerate(raw):
        try:
            specs.append(validate(FaultSpec, item, f"faults[{i}]"))
        except ConfigError as e:
            raise BadRequest(str(e)) from e
    added = request.app[FAULTS].add_all(specs)
    now = time.monotonic()
    log.warning("%s: %d fault(s) applied: %s", request.app[CONTEXT].instance, len(added), ", ".join(f.spec.kind for f in added))
    return web.json_response({"faults": [_fault_view(f, now) for f in added]}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    require_control(request)
    return web.json_response({"removed": request.app[FAULTS].clear()})


async def remove_fault(request: web.Request) -> web.Response:
    require_control(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or not request.app[FAULTS].remove(int(raw)):
        raise NotFound(f"No active fault with id {raw}")
    return web.json_response({"removed": 1})


CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


async def _upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    client = app[UPSTREAM]
    await client.start()
    yield
    await client.close()


async def _ready_ctx(app: web.Application) -> AsyncIterator[None]:
    # Runs after every service resource is set up (it is registered last).
    app[READY].set()
    app[METRICS].ready.set(1)
    yield
    app[READY].clear()
    app[METRICS].ready.set(0)


def create_service_app(
    ctx: ServiceContext,
    routes: Iterable[web.AbstractRouteDef],
    *,
    cleanup: Iterable[CleanupCtx] = (),
    catch_all: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
    route_of: Callable[[web.Request], str] | None = None,
    client_max_size: int = MAX_BODY_BYTES,
    instrument: bool = True,
    chaos: bool = True,
) -> web.Application:
    """Build a service's app: skeleton routes, the service's ``routes``, then an optional catch-all.

    ``instrument=False`` leaves out the metrics middleware and ``chaos=False`` the fault
    middleware (the benchmark's baselines; the lab always runs both).
    """
    metrics = HttpMetrics(ctx.kind, ctx.instance)
    faults = FaultStore()
    # Faults sit inside the metrics middleware, so what they do to callers is measured.
    route_of = route_of or canonical_route
    fault_mw = fault_middleware(
        faults,
        lambda status, retry_after: json_error(status, _FAULT_MESSAGES.get(status, "Internal error"), 131, retry_after),
        route_of,
    )
    middlewares = [metrics_middleware(metrics, route_of)] if instrument else []
    middlewares += [fault_mw] if chaos else []
    middlewares.append(error_middleware)
    app = web.Application(client_max_size=client_max_size, middlewares=middlewares)
    metrics.set_version(ctx.arch.version)
    app[CONTEXT] = ctx
    app[METRICS] = metrics
    app[FAULTS] = faults
    metrics.registry.register(FaultCollector(faults, ctx.kind, ctx.instance))
    app[UPSTREAM] = UpstreamClient(ctx.lab, metrics, faults)
    app[READY] = asyncio.Event()
    app[CACHES] = {}  # a service registers its caches here after building the app
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/control/architecture", get_architecture)
    app.router.add_put("/control/architecture", put_architecture)
    app.router.add_post("/control/architecture/baseline", restore_baseline)
    app.router.add_get("/control/faults", list_faults)
    app.router.add_post("/control/faults", add_faults)
    app.router.add_delete("/control/faults", clear_faults)
    app.router.add_delete("/control/faults/{id}", remove_fault)
    app.router.add_post("/control/caches/{op}", cache_op)
    app.router.add_routes(routes)
    if catch_all is not None:
        app.router.add_route("*", "/{tail:.*}", catch_all)
    app.cleanup_ctx.append(_upstream_ctx)
    app.cleanup_ctx.extend(cleanup)
    app.cleanup_ctx.append(_ready_ctx)
    return app


def serve(app: web.Application, host: str, port: int, who: str) -> int:
    """Run ``app`` until stopped (the lab's way: no banner, no access log); the exit code.

    A port already taken is one line naming the port and who wanted it, never a traceback.
    """
    try:
        # uvloop: every hop of the lab costs less CPU on it than on asyncio's own loop.
        web.run_app(app, host=host, port=port, print=None, access_log=None, loop=uvloop.new_event_loop())
    except OSError as e:
        print(f"error: {who} cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0

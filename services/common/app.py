"""The service skeleton: context, middlewares, health/metrics/control routes, JSON helpers.

A service module builds its app with :func:`create_service_app`, passing its own routes and
resources; everything common to all services (client-class metrics, JSON errors, ``/healthz``,
``/readyz``, ``/metrics``, the authenticated control plane, where an architecture change is a
lease that lapses back to the baseline unless renewed) lives here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
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
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from configfiles.errors import ConfigError
from configfiles.yamlconf import validate
from services.architecture.model import (
    DEFAULT_LEASE_S,
    MAX_LEASE_S,
    Architecture,
    ArchitectureState,
    parse_architecture,
)
from services.common.clients import client_class
from services.common.faults import (
    MAX_ACTIVE_FAULTS,
    FaultCollector,
    FaultSpec,
    FaultStore,
    apply_faults,
    canonical_route,
)
from services.common.hosts import foreign_host, own_names
from services.common.jsonbody import JSONDecodeError, json_response, loads
from services.common.metrics import HttpMetrics
from services.common.upstream import UpstreamClient
from services.config import LabConfig
from services.errors import BadRequest, NotFound, ServiceError, Unauthorized

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

# The route name a handler that routes by itself (API replicas, proxies) gives the request it
# serves, for the metrics. A context variable, not a request key: aiohttp serves every request in a
# task of its own, so the name is the request's alone, and reading it costs no Python call.
ROUTE_LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("failwhale_route_label", default="")


def name_route(name: str) -> None:
    """Label the request being served as route ``name`` in the metrics (call it from its handler)."""
    ROUTE_LABEL.set(name)


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
    return json_response(error_body(message, code), status=status, headers=headers)


class OneLineAborts(logging.Filter):
    """A dropped connection is expected in this lab (an abort or blackhole fault, a caller that
    gave up): log it as one line instead of aiohttp's full traceback, which over a long game
    would fill the logs with the same thirty lines."""

    EXPECTED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, self.EXPECTED):
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {exc}", None
            record.exc_info = record.exc_text = None
        return True


def route_labels(router: web.UrlDispatcher, catch_all: Handler | None = None) -> dict[Handler, str]:
    """Each handler's route label, for the handlers that serve exactly one route (not ``catch_all``,
    whose requests the handler or ``route_of`` names). The metrics look a request's label up by the
    handler aiohttp hands the middleware: one dict look-up instead of four properties a request."""
    labels: dict[Handler, str] = {}
    shared: set[Handler] = set()
    for route in router.routes():
        handler, resource = route.handler, route.resource
        if handler is catch_all or resource is None:
            continue
        if labels.setdefault(handler, resource.canonical) != resource.canonical:
            shared.add(handler)
    return {h: label for h, label in labels.items() if h not in shared}


def service_middleware(
    ctx: ServiceContext,
    metrics: HttpMetrics | None,
    faults: FaultStore | None,
    route_of: Callable[[web.Request], str] = canonical_route,
    labels: dict[Handler, str] | None = None,
) -> Middleware:
    """The one middleware every service runs; from the outside in, it:

    1. counts and times the request (``metrics``; the route label is what the handler set, else
       its entry in ``labels`` (:func:`route_labels`, filled once the routes are known), else
       ``route_of``, e.g. for a request that matched no route), so whatever the layers below do
       to a caller is measured;
    2. refuses a Host header that names another address than this process's own (421);
    3. applies the active faults (``faults``), skipped at the cost of one check when none is;
    4. turns domain errors and aiohttp's own HTTP errors into JSON: nothing escapes as a bare 500.

    One coroutine, not four middlewares: each aiohttp middleware layer costs a call and a
    coroutine per request, on every hop of every journey (``bench/metrics_overhead.py``).
    ``metrics=None`` and ``faults=None`` leave those steps out (the benchmark's baselines).
    """
    allowed = own_names(ctx.lab.host_of(ctx.instance), ctx.lab.port(ctx.instance))  # why: services/common/hosts.py
    labels = {} if labels is None else labels
    clock = time.perf_counter

    def fault_answer(status: int, retry_after: float | None) -> web.StreamResponse:
        return json_error(status, _FAULT_MESSAGES.get(status, "Internal error"), 131, retry_after)

    @web.middleware
    async def serve_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The steps are inlined in one coroutine, and the metrics ones skipped by one check, because
        # each awaited call costs more than the metrics themselves (bench/metrics_overhead.py).
        if metrics is not None:
            start = clock()
            metrics.in_flight += 1
        status = 500
        resp: web.StreamResponse
        try:
            if (host := foreign_host(request, allowed)) is not None:
                resp = json_error(421, f"This is {ctx.lab.address(ctx.instance)}, not {host[:100]}", 0)
            elif faults is not None and faults.faults:
                # Errors are answered inside the faults: a fault's dropped connection is no error answer.
                resp = await apply_faults(faults, request, lambda r: _guarded(handler, r), fault_answer, route_of)
            else:
                try:
                    resp = await handler(request)
                except Exception as e:
                    resp = _error_answer(request, e)
            if metrics is not None:
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
            if metrics is not None:
                metrics.in_flight -= 1
                route = ROUTE_LABEL.get() or labels.get(handler) or route_of(request)
                metrics.observe_request(route, request.method, status, client_class(request.headers), clock() - start)

    return serve_request


async def _guarded(handler: Handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as e:
        return _error_answer(request, e)


def _error_answer(request: web.Request, e: Exception) -> web.StreamResponse:
    """The JSON answer for an error a handler raised; re-raises a redirect (an HTTPException < 400).
    Call it only from an ``except`` block: it logs the traceback of an unexpected error."""
    if isinstance(e, ServiceError):
        return json_error(e.status, e.message, e.code, e.retry_after, e.headers)
    if isinstance(e, web.HTTPException):
        if e.status < 400:
            raise e
        allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        return json_error(e.status, e.reason, 0, headers=allow)
    log.exception("unhandled error serving %s %s", request.method, request.path)
    return json_error(500, "Internal error", 131)


# The deepest body any route takes is an architecture document (about 6 levels); deeper is a
# mistake or an attack, and Python's json and pydantic recurse once per level.
MAX_JSON_DEPTH = 32
# No id, count or limit here needs more digits; int() refuses more than 4,300 with a ValueError.
MAX_DIGITS = 19  # as many as SQLite's largest INTEGER, 2**63 - 1


def whole_number(raw: str, max_digits: int = MAX_DIGITS) -> int | None:
    """``raw`` as a non-negative integer, or None if it is not plain ASCII digits or is too long."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > max_digits:
        return None
    return int(raw)


def _depth(data: Any) -> int:
    """How deeply ``data`` nests lists and objects, found without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest/413 saying what is wrong with it."""
    raw = await request.read()  # raises HTTPRequestEntityTooLarge beyond client_max_size
    if not raw:
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        data = loads(raw)
    except JSONDecodeError as e:
        # orjson's own limit (1,024 levels) is far beyond MAX_JSON_DEPTH: say which one applies.
        if str(e).startswith("depth limit exceeded"):
            raise BadRequest(f"Request body nests more than {MAX_JSON_DEPTH} levels deep") from e
        # Also invalid UTF-8, and an integer too large even for a float; the message says which.
        raise BadRequest(f"Request body is not valid JSON: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise BadRequest(f"Request body nests more than {MAX_JSON_DEPTH} levels deep")
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
    return json_response({"status": "alive", "service": ctx.kind, "replica": ctx.instance})


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    ready = request.app[READY].is_set()
    body = {"ready": ready, "service": ctx.kind, "replica": ctx.instance, "version": ctx.arch.version}
    return json_response(body, status=200 if ready else 503)


async def metrics_view(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


# How often a process looks for a lapsed lease: a lapse lands at most this late.
LEASE_CHECK_EVERY_S = 0.25


def _shown(value: Any) -> str:
    """A JSON value as an error message quotes it: one line, and short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _lease_s(body: dict[str, Any]) -> float:
    """The body's ``lease_s``, or DEFAULT_LEASE_S; BadRequest naming the bound when it is off."""
    if "lease_s" not in body:
        return DEFAULT_LEASE_S
    value = body["lease_s"]
    # bool is an int to Python, but `"lease_s": true` is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_LEASE_S:
        raise BadRequest(
            f"lease_s must be a number of seconds above 0 and at most {MAX_LEASE_S:g}, not {_shown(value)}"
        )
    return float(value)


def _expires_in(state: ArchitectureState) -> float | None:
    remaining = state.lease_remaining(time.monotonic())
    return None if remaining is None else round(remaining, 3)


def lapse_if_due(app: web.Application) -> Architecture | None:
    """Put the process back on its baseline if its lease is due: the architecture it left."""
    ctx = app[CONTEXT]
    state = ctx.architecture
    left = state.lapse_if_due(time.monotonic())
    if left is not None:
        metrics = app[METRICS]
        metrics.set_version(state.current.version)
        metrics.architecture_lease_lapses.inc()
        log.warning(
            "%s: lease on architecture %s lapsed; back on %s", ctx.instance, left.version, state.current.version
        )
    return left


async def get_architecture(request: web.Request) -> web.Response:
    require_control(request)
    # A lease due but not yet noticed by the lapse loop has lapsed: say what runs in truth.
    lapse_if_due(request.app)
    state = request.app[CONTEXT].architecture
    # The whole document too, so a change can start from what runs now (a workshop's levers).
    return json_response(
        {
            "version": state.current.version,
            "baseline": state.baseline.version,
            "lease_expires_in_s": _expires_in(state),
            "halted_s_ago": state.halted_ago(time.monotonic()),
            "architecture": state.current.model_dump(mode="json"),
        }
    )


async def put_architecture(request: web.Request) -> web.Response:
    """Move this process to another architecture version (validated whole before it applies).

    The change holds for ``lease_s`` seconds (default DEFAULT_LEASE_S) unless renewed, or for
    good with ``"keep": true``; moving to the baseline version ends any lease.
    """
    require_control(request)
    body = await read_json(request)
    if "architecture" not in body:
        raise BadRequest("Body needs an 'architecture' field holding the architecture document")
    keep = body.get("keep", False)
    if not isinstance(keep, bool):
        raise BadRequest(f"keep must be true or false, not {_shown(keep)}")
    if keep and "lease_s" in body:
        raise BadRequest("Give either 'keep': true (a permanent change) or 'lease_s', not both")
    lease_s = None if keep else _lease_s(body)
    ctx = request.app[CONTEXT]
    try:
        new = parse_architecture(body["architecture"], where="request body")
    except ConfigError as e:
        raise BadRequest(str(e)) from e
    if new.instance_kinds().get(ctx.instance) != ctx.kind:
        raise BadRequest(f"Architecture {new.version} has no {ctx.kind} instance named {ctx.instance!r}")
    lapse_if_due(request.app)  # so "previous" is what ran in truth
    old = ctx.architecture.apply(new, lease_s, time.monotonic())
    request.app[METRICS].set_version(new.version)
    expires = _expires_in(ctx.architecture)
    held = "permanently" if expires is None else f"for {expires:g} s unless renewed"
    log.info("%s moved from architecture %s to %s, %s", ctx.instance, old.version, new.version, held)
    return json_response({"version": new.version, "previous": old.version, "lease_expires_in_s": expires})


async def renew_architecture(request: web.Request) -> web.Response:
    """Extend the lease on the version this process runs: ``{"version": ..., "lease_s": ...}``.

    409 when another version runs (the lease lapsed, or someone else changed it), so the
    renewer learns its change is gone; the body's ``version`` says what runs instead.
    """
    require_control(request)
    body = await read_json(request)
    version = body.get("version")
    if not isinstance(version, str) or not version:
        raise BadRequest("Body needs a 'version' field naming the architecture version to renew")
    lease_s = _lease_s(body)
    ctx = request.app[CONTEXT]
    state = ctx.architecture
    lapse_if_due(request.app)  # a lease already due is gone, not renewable
    if state.renew(version, lease_s, time.monotonic()):
        return json_response({"version": version, "lease_expires_in_s": _expires_in(state)})
    running = state.current.version
    if running != version:
        message = (
            f"{ctx.instance} runs architecture {running}, not {version}: its lease lapsed or another change replaced it"
        )
    else:
        message = f"{ctx.instance} runs its baseline architecture {running}: nothing to renew"
    return json_response({**error_body(message, 0), "version": running}, status=409)


async def restore_baseline(request: web.Request) -> web.Response:
    """Put this process back on the architecture it started with (rollback, halt); ends any lease.

    ``?halt=1`` (the kill switch) also records when, so a rollout in progress anywhere learns of
    the halt from the processes themselves (``halted_s_ago`` in GET /control/architecture).
    """
    require_control(request)
    ctx = request.app[CONTEXT]
    halt = request.query.get("halt", "0")
    if halt not in ("0", "1"):
        raise BadRequest(f"halt must be 0 or 1, not {_shown(halt)}")
    lapse_if_due(request.app)  # so "previous" is what ran in truth
    state = ctx.architecture
    old = state.halt(time.monotonic()) if halt == "1" else state.swap(state.baseline)
    request.app[METRICS].set_version(ctx.arch.version)
    return json_response({"version": ctx.arch.version, "previous": old.version})


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
    return json_response({"op": op, "caches": done})


# What an injected error says: the words the real API used for these statuses.
_FAULT_MESSAGES = {
    429: "Rate limit exceeded",
    500: "Internal error",
    502: "Upstream error",
    503: "Over capacity",
    504: "Upstream timed out",
}


def _fault_view(f, now: float) -> dict[str, Any]:
    # kind has no default, so exclude_defaults keeps it.
    return {"id": f.id, "expires_in_s": round(f.remaining(now), 3), **f.spec.model_dump(exclude_defaults=True)}


async def list_faults(request: web.Request) -> web.Response:
    require_control(request)
    now = time.monotonic()
    return json_response({"faults": [_fault_view(f, now) for f in request.app[FAULTS].active()]})


async def add_faults(request: web.Request) -> web.Response:
    """Apply faults: ``{"faults": [spec, ...]}``. All are validated first; none or all apply."""
    require_control(request)
    body = await read_json(request)
    raw = body.get("faults")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("Body needs a non-empty 'faults' list")
    active = len(request.app[FAULTS].active())
    if active + len(raw) > MAX_ACTIVE_FAULTS:
        raise BadRequest(
            f"A process holds at most {MAX_ACTIVE_FAULTS} active faults: {active} active, {len(raw)} more asked for"
        )
    specs = []
    for i, item in enumerate(raw):
        try:
            specs.append(validate(FaultSpec, item, f"faults[{i}]"))
        except ConfigError as e:
            raise BadRequest(str(e)) from e
    added = request.app[FAULTS].add_all(specs)
    now = time.monotonic()
    log.warning(
        "%s: %d fault(s) applied: %s", request.app[CONTEXT].instance, len(added), ", ".join(f.spec.kind for f in added)
    )
    return json_response({"faults": [_fault_view(f, now) for f in added]}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    require_control(request)
    return json_response({"removed": request.app[FAULTS].clear()})


async def remove_fault(request: web.Request) -> web.Response:
    require_control(request)
    raw = request.match_info["id"]
    fault_id = whole_number(raw)
    if fault_id is None or not request.app[FAULTS].remove(fault_id):
        raise NotFound(f"No active fault with id {raw[:40]}")
    return json_response({"removed": 1})


CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


async def _upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    client = app[UPSTREAM]
    await client.start()
    yield
    await client.close()


async def _lease_ctx(app: web.Application) -> AsyncIterator[None]:
    """The lapse loop: a leased change goes back to the baseline once its lease is due."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(LEASE_CHECK_EVERY_S)
            try:
                lapse_if_due(app)
            except Exception:
                # A listener failed on the way back. The process runs its baseline regardless (the
                # lease is cleared first), so say so, and the loop lives on for later leases.
                app[METRICS].set_version(app[CONTEXT].arch.version)
                log.exception(
                    "%s: a listener failed while a lapsed lease went back to the baseline", app[CONTEXT].instance
                )

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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

    ``instrument=False`` leaves the metrics out of the service middleware and ``chaos=False`` the
    faults (the benchmark's baselines; the lab always runs both).
    """
    metrics = HttpMetrics(ctx.kind, ctx.instance)
    faults = FaultStore()
    route_of = route_of or canonical_route
    labels: dict[Handler, str] = {}
    middleware = service_middleware(ctx, metrics if instrument else None, faults if chaos else None, route_of, labels)
    app = web.Application(client_max_size=client_max_size, middlewares=[middleware])

    async def label_routes(app: web.Application) -> None:
        labels.update(route_labels(app.router, catch_all))  # every route is added by now

    app.on_startup.append(label_routes)
    metrics.set_version(ctx.arch.version)
    metrics.watch_lease(lambda: ctx.architecture.lease_remaining(time.monotonic()) or 0.0)
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
    app.router.add_post("/control/architecture/renew", renew_architecture)
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
    # After the service's own resources: a lapse resizes them, so the loop stops before they close.
    app.cleanup_ctx.append(_lease_ctx)
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

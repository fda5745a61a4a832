"""Faults a service can be told to suffer, applied by the middleware every service shares.

A fault is data (:class:`FaultSpec`): what to do (added latency, an error answer, a dropped
connection, a hang, a concurrency cut, or sending a dependency somewhere else), to which
requests (path prefix, method, a header), how often, and for how long. Every fault has a TTL
and lapses by itself, so a crashed chaos runner cannot leave one behind. With no fault active
they cost one attribute check per request.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal, get_args

from aiohttp import web
from prometheus_client.metrics_core import GaugeMetricFamily
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_TTL_S = 3600.0
DEFAULT_TTL_S = 15.0
# Active faults one process holds at most: every request is matched against each of them.
MAX_ACTIVE_FAULTS = 64
FaultKind = Literal["latency", "error", "abort", "blackhole", "capacity", "reroute", "rate_limit"]
# Kinds that change how this process behaves as a whole rather than matching requests.
PROCESS_KINDS = frozenset({"reroute", "rate_limit"})


class FaultSpec(BaseModel):
    """One fault. Only the fields of its ``kind`` may be set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    ttl_s: Annotated[float, Field(gt=0, le=MAX_TTL_S)] = DEFAULT_TTL_S
    # Which requests: all of them unless narrowed. (A header match exists as a generic tool;
    # shipped scenarios never use it to single out web or app traffic.)
    path_prefix: str = "/"
    route: str | None = None  # a route name as metrics label it (e.g. home_timeline on the API)
    method: str | None = None
    header: dict[str, str] = {}
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    # latency
    latency_ms: Annotated[float, Field(ge=0, le=60000)] = 0.0
    jitter_ms: Annotated[float, Field(ge=0, le=60000)] = 0.0
    # error
    status: Annotated[int, Field(ge=400, le=599)] = 503
    retry_after_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    # capacity
    max_in_flight: Annotated[int, Field(ge=0, le=100000)] | None = None
    # reroute: calls this process makes to ``upstream_service`` go to ``to_service`` instead
    upstream_service: str | None = None
    to_service: str | None = None
    # rate_limit: the auth bucket ``bucket`` allows ``rate_per_s`` with bursts of ``burst``
    bucket: str | None = None
    rate_per_s: Annotated[float, Field(gt=0, le=1e6)] | None = None
    burst: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> FaultSpec:
        own = {
            "latency": {"latency_ms", "jitter_ms"},
            "error": {"status", "retry_after_s"},
            "capacity": {"max_in_flight"},
            "reroute": {"upstream_service", "to_service"},
            "rate_limit": {"bucket", "rate_per_s", "burst"},
            "abort": set(),
            "blackhole": set(),
        }
        for kind, fields in own.items():
            if kind != self.kind:
                stray = fields & self.model_fields_set - own[self.kind]
                if stray:
                    raise ValueError(f"{', '.join(sorted(stray))} does not apply to a {self.kind} fault")
        if self.kind == "latency" and self.latency_ms == 0 and self.jitter_ms == 0:
            raise ValueError("a latency fault needs latency_ms or jitter_ms")
        if self.kind == "capacity" and self.max_in_flight is None:
            raise ValueError("a capacity fault needs max_in_flight")
        if self.kind == "reroute" and not (self.upstream_service and self.to_service):
            raise ValueError("a reroute fault needs upstream_service and to_service")
        if self.kind == "rate_limit" and not (self.bucket and self.rate_per_s and self.burst):
            raise ValueError("a rate_limit fault needs bucket, rate_per_s and burst")
        return self

    def matches(self, request: web.Request, route_of: Callable[[web.Request], str]) -> bool:
        if not request.path.startswith(self.path_prefix):
            return False
        if self.route is not None and route_of(request) != self.route:
            return False
        if self.method is not None and request.method != self.method:
            return False
        return all(request.headers.get(k) == v for k, v in self.header.items())


@dataclass
class ActiveFault:
    id: int
    spec: FaultSpec
    expires: float  # time.monotonic()
    in_flight: int = 0
    # Set when the fault is removed (halt, DELETE): requests it parks wake up at once instead of
    # sleeping out their time.
    lifted: asyncio.Event = field(default_factory=asyncio.Event)

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires - now)

    async def park(self, seconds: float) -> bool:
        """Hold a request up to ``seconds``; True if the fault was removed meanwhile."""
        try:
            await asyncio.wait_for(self.lifted.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


@dataclass
class FaultStore:
    """The faults one process suffers now. Expired faults vanish on the next look."""

    faults: dict[int, ActiveFault] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    rng: random.Random = field(default_factory=random.Random)

    @property
    def any(self) -> bool:
        return bool(self.faults)

    def add_all(self, specs: list[FaultSpec]) -> list[ActiveFault]:
        """Apply every spec at once (they were all validated before any is applied)."""
        now = time.monotonic()
        added = [ActiveFault(next(self._ids), s, now + s.ttl_s) for s in specs]
        for f in added:
            self.faults[f.id] = f
        return added

    def active(self) -> list[ActiveFault]:
        now = time.monotonic()
        for fid in [fid for fid, f in self.faults.items() if f.expires <= now]:
            del self.faults[fid]
        return list(self.faults.values())

    def remove(self, fault_id: int) -> bool:
        fault = self.faults.pop(fault_id, None)
        if fault is not None:
            fault.lifted.set()
        return fault is not None

    def clear(self) -> int:
        n = len(self.faults)
        for fault in self.faults.values():
            fault.lifted.set()
        self.faults.clear()
        return n

    def reroute(self, service: str) -> str:
        """Where calls to ``service`` go now (itself unless a reroute fault says otherwise)."""
        if not self.faults:
            return service
        for f in self.active():
            if f.spec.kind == "reroute" and f.spec.upstream_service == service:
                return f.spec.to_service or service
        return service

    def rate_limit(self, bucket: str) -> ActiveFault | None:
        """The newest active rate_limit fault on ``bucket``, if any."""
        if not self.faults:
            return None
        found = [f for f in self.active() if f.spec.kind == "rate_limit" and f.spec.bucket == bucket]
        return found[-1] if found else None


KINDS: tuple[str, ...] = get_args(FaultKind)


class FaultCollector:
    """``failwhale_faults_active``: how many faults of each kind a process suffers now."""

    def __init__(self, store: FaultStore, service: str, replica: str) -> None:
        self.store, self.service, self.replica = store, service, replica

    def describe(self):
        return iter(())

    def collect(self):
        g = GaugeMetricFamily(
            "failwhale_faults_active",
            "Faults this process suffers now, by kind (each lapses by its TTL).",
            labels=["service", "replica", "kind"],
        )
        active = self.store.active()
        for kind in KINDS:
            g.add_metric([self.service, self.replica, kind], sum(1 for f in active if f.spec.kind == kind))
        yield g


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorResponse = Callable[[int, float | None], web.StreamResponse]


def canonical_route(request: web.Request) -> str:
    """The route name of a request as the metrics label it, for services routed by aiohttp."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


async def apply_faults(
    store: FaultStore,
    request: web.Request,
    handler: Handler,
    error_response: ErrorResponse,
    route_of: Callable[[web.Request], str] = canonical_route,
) -> web.StreamResponse:
    """Serve ``request`` through ``handler`` as the active faults say; call only when ``store.faults``.

    The service middleware (``services.common.app``) calls this inside its metrics, so what faults
    do to callers is measured, and skips it when no fault is active. ``route_of`` names a
    request's route the way the metrics do, for faults matched by route.
    """
    if request.path.startswith("/control/") or request.path in ("/metrics", "/healthz", "/readyz"):
        return await handler(request)  # chaos must never lock out its own off switch
    now = time.monotonic()
    held: list[ActiveFault] = []
    try:
        # Admission first: a capacity cut must count requests that other faults then slow down.
        for f in sorted(store.active(), key=lambda f: f.spec.kind != "capacity"):
            spec = f.spec
            if spec.kind in PROCESS_KINDS or not spec.matches(request, route_of):
                continue
            if spec.probability < 1.0 and store.rng.random() >= spec.probability:
                continue
            if spec.kind == "latency":
                await f.park((spec.latency_ms + store.rng.uniform(0, spec.jitter_ms)) / 1000)
            elif spec.kind == "error":
                return error_response(spec.status, spec.retry_after_s)
            elif spec.kind == "capacity":
                if f.in_flight >= (spec.max_in_flight or 0):
                    return error_response(503, None)
                f.in_flight += 1
                held.append(f)
            elif spec.kind == "abort":
                if request.transport is not None:
                    request.transport.abort()  # the caller sees its connection reset
                raise ConnectionResetError("fault: connection aborted")
            elif spec.kind == "blackhole":
                # Say nothing until the fault lapses (callers give up long before), unless it
                # is removed first: then the request goes on as if it had never been held.
                if await f.park(f.remaining(now)):
                    continue
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError("fault: blackhole")
        return await handler(request)
    finally:
        for f in held:
            f.in_flight -= 1

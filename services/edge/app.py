"""Edge app: round-robin over API replicas, with timeouts, retries and passive ejection.

A replica that fails ``eject_after_failures`` times in a row (connection refused or timed
out) is taken out of rotation for ``eject_for_s``. Replica answers, even 5xx ones, are
passed through: they say the API is broken, not that the replica is gone. If every replica
is ejected the edge uses them all anyway (Envoy's "panic mode"): sending to a maybe-dead
replica beats answering nobody.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from services.architecture.model import Architecture, Upstream
from services.common.app import CONTEXT, METRICS, UPSTREAM, ServiceContext, create_service_app, name_route
from services.common.upstream import IDEMPOTENT, forward_headers, respond
from services.errors import UpstreamError, UpstreamTimeout


@dataclass
class ReplicaHealth:
    name: str
    failures: int = 0
    ejected_until: float = 0.0


class Pool:
    def __init__(self, replicas: list[str], ejected_gauge: Gauge, ejections: Counter, edge: tuple[str, str]) -> None:
        self._gauge, self._ejections, self._edge = ejected_gauge, ejections, edge
        self._upstreams: dict[tuple[str, float], Upstream] = {}
        self.set_replicas(replicas)

    def set_replicas(self, replicas: list[str]) -> None:
        old = {r.name: r for r in getattr(self, "replicas", [])}
        self.replicas = [old.get(name) or ReplicaHealth(name) for name in replicas]
        self._rr = itertools.cycle(range(len(self.replicas)))
        now = time.monotonic()
        for r in self.replicas:  # a replica kept keeps its ejection, and shows it
            self._gauge.labels(*self._edge, r.name).set(1 if r.ejected_until > now else 0)
        for name in old.keys() - set(replicas):  # out of the pool (drained): no longer ejected by it
            self._gauge.labels(*self._edge, name).set(0)

    def upstream(self, replica: ReplicaHealth, timeout_s: float) -> Upstream:
        """How to call ``replica``: one validated Upstream per replica and timeout, built once
        instead of on every request (a pydantic model costs microseconds to build)."""
        key = (replica.name, timeout_s)
        found = self._upstreams.get(key)
        if found is None:
            found = self._upstreams[key] = Upstream(service=replica.name, timeout_s=timeout_s)
        return found

    def pick(self, avoid: set[str]) -> ReplicaHealth:
        now = time.monotonic()
        n = len(self.replicas)
        for _ in range(n):
            r = self.replicas[next(self._rr)]
            if r.ejected_until and r.ejected_until <= now:
                r.ejected_until = 0.0  # back in rotation: the window is over
                self._gauge.labels(*self._edge, r.name).set(0)
            if r.ejected_until <= now and r.name not in avoid:
                return r
        for _ in range(n):  # panic mode: every candidate is ejected or already tried
            r = self.replicas[next(self._rr)]
            if r.name not in avoid:
                return r
        return self.replicas[next(self._rr)]

    def succeeded(self, r: ReplicaHealth) -> None:
        if r.failures or r.ejected_until:
            r.failures, r.ejected_until = 0, 0.0
            self._gauge.labels(*self._edge, r.name).set(0)

    def failed(self, r: ReplicaHealth, eject_after: int, eject_for: float) -> None:
        r.failures += 1
        if r.failures >= eject_after and r.ejected_until <= time.monotonic():
            r.ejected_until = time.monotonic() + eject_for
            r.failures = 0
            self._ejections.labels(*self._edge, r.name).inc()
            self._gauge.labels(*self._edge, r.name).set(1)


POOL = web.AppKey("edge_pool", Pool)


async def route(request: web.Request) -> web.StreamResponse:
    """Send the request to a replica; try another one after a connection failure or timeout."""
    name_route("api")
    edge = request.app[CONTEXT].arch.edge
    pool = request.app[POOL]
    client = request.app[UPSTREAM]
    body = await request.read() if request.can_read_body else None
    headers = forward_headers(request)
    attempts = 1 + (edge.retries if request.method in IDEMPOTENT else 0)
    tried: set[str] = set()
    error: Exception | None = None
    for _ in range(attempts):
        replica = pool.pick(tried)
        tried.add(replica.name)
        upstream = pool.upstream(replica, edge.timeout_s)
        try:
            resp = await client.call(
                upstream,
                request.method,
                request.rel_url.raw_path,
                name=replica.name,
                body=body,
                query=request.rel_url.raw_query_string,
                headers=headers,
            )
        except (UpstreamError, UpstreamTimeout) as e:
            pool.failed(replica, edge.eject_after_failures, edge.eject_for_s)
            error = e
            continue
        pool.succeeded(replica)
        return respond(resp)
    assert error is not None
    raise error


def create_app(ctx: ServiceContext) -> web.Application:
    app = create_service_app(ctx, [], catch_all=route)
    m = app[METRICS]
    ejected = Gauge(
        "failwhale_edge_replica_ejected",
        "1 while the edge keeps an API replica out of rotation after repeated failures.",
        ["service", "replica", "upstream"],
        registry=m.registry,
    )
    ejections = Counter(
        "failwhale_edge_ejections_total",
        "Times the edge took an API replica out of rotation.",
        ["service", "replica", "upstream"],
        registry=m.registry,
    )
    drained = Gauge(
        "failwhale_edge_replica_drained",
        "1 while an operator has drained an API replica: the edge sends it nothing.",
        ["service", "replica", "upstream"],
        registry=m.registry,
    )
    pool = Pool(ctx.arch.serving_replicas(), ejected, ejections, (m.service, m.replica))
    app[POOL] = pool

    def show_drained(arch: Architecture) -> None:
        for name in arch.api.instances:
            drained.labels(m.service, m.replica, name).set(1 if name in arch.edge.drained else 0)

    def on_change(_old: Architecture, new: Architecture) -> None:
        pool.set_replicas(new.serving_replicas())
        show_drained(new)

    show_drained(ctx.arch)

    ctx.architecture.on_change(on_change)
    return app

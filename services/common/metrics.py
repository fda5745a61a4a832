"""HTTP, upstream, deploy and readiness metrics every service exposes on ``/metrics``.

Each app gets its own ``CollectorRegistry`` (so tests and several apps in one process never
collide). Labelled children are cached per label tuple: ``labels()`` takes a lock and builds
a key on every call, which alone costs more than the rest of the request accounting.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

# Seconds; spans a cache hit (~1 ms) to a request that waits for a 3 s edge timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

UPSTREAM_OUTCOMES = ("ok", "client_error", "server_error", "timeout", "connection_error")


class HttpMetrics:
    """Metrics of one service process; ``service`` and ``replica`` are fixed for its lifetime."""

    def __init__(self, service: str, replica: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.service = service
        self.replica = replica
        r = self.registry
        # CPU and memory of this process (process_*), read only when Prometheus scrapes.
        ProcessCollector(registry=r)
        self.requests = Counter(
            "failwhale_http_requests_total",
            "HTTP requests served, by route, method, status code and client class.",
            ["service", "replica", "route", "method", "code", "client"],
            registry=r,
        )
        self.latency = Histogram(
            "failwhale_http_request_duration_seconds",
            "Time to serve an HTTP request, by route, method and client class.",
            ["service", "replica", "route", "method", "client"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "failwhale_http_requests_in_flight",
            "HTTP requests being served right now.",
            ["service", "replica"],
            registry=r,
        ).labels(service, replica)
        self.upstream_requests = Counter(
            "failwhale_upstream_requests_total",
            "Calls this service made to a dependency, by outcome.",
            ["service", "replica", "upstream", "outcome"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "failwhale_upstream_request_duration_seconds",
            "Time a call to a dependency took, including its retries.",
            ["service", "replica", "upstream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.deploy_info = Gauge(
            "failwhale_deploy_info",
            "Always 1; the version label says which architecture this process runs.",
            ["service", "replica", "version"],
            registry=r,
        )
        self.architecture_swaps = Counter(
            "failwhale_architecture_swaps_total",
            "Times this process was moved to another architecture version.",
            ["service", "replica"],
            registry=r,
        ).labels(service, replica)
        self.ready = Gauge(
            "failwhale_service_ready",
            "1 when the process reports ready on /readyz (process health, not user health).",
            ["service", "replica"],
            registry=r,
        ).labels(service, replica)
        self._http_children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}
        self._upstream_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._version: str | None = None

    def observe_request(self, route: str, method: str, code: int, client: str, seconds: float) -> None:
        key = (route, method, code, client)
        children = self._http_children.get(key)
        if children is None:
            s, r = self.service, self.replica
            children = (
                self.requests.labels(s, r, route, method, str(code), client),
                self.latency.labels(s, r, route, method, client),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_upstream(self, upstream: str, outcome: str, seconds: float) -> None:
        key = (upstream, outcome)
        children = self._upstream_children.get(key)
        if children is None:
            s, r = self.service, self.replica
            children = (
                self.upstream_requests.labels(s, r, upstream, outcome),
                self.upstream_latency.labels(s, r, upstream),
            )
            self._upstream_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def set_version(self, version: str) -> None:
        if self._version is not None and self._version != version:
            self.deploy_info.remove(self.service, self.replica, self._version)
            self.architecture_swaps.inc()
        self.deploy_info.labels(self.service, self.replica, version).set(1)
        self._version = version

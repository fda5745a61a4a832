"""HTTP, upstream, deploy and readiness metrics every service exposes on ``/metrics``.

Each app gets its own ``CollectorRegistry`` (so tests and several apps in one process never
collide). The per-request HTTP figures are plain numbers updated without locks (only the
event loop's thread writes them) and turned into Prometheus samples when Prometheus scrapes:
prometheus-client's locked counters and histograms cost about twice as much per request
(see ``bench/metrics_overhead.py``). Upstream calls, rarer, use the ordinary metric types
with their labelled children cached.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

# Seconds; spans a cache hit (~1 ms) to a request that waits for a 3 s edge timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A request series is one flat list: [seconds in all, then a count per bucket, +Inf last]. Its slot
# for a duration is bisect_left(_SLOTS, seconds): the -inf in front puts the buckets at 1.. and
# bisect_left keeps ``le`` inclusive, as prometheus_client does. The request count is the buckets'
# sum, worked out at scrape time instead of counted per request.
_SLOTS = (float("-inf"), *LATENCY_BUCKETS)
_SERIES_LEN = 1 + len(LATENCY_BUCKETS) + 1

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
        # Per request: plain ints and floats, no locks (one event loop per process writes them);
        # samples are built only when Prometheus scrapes.
        self.in_flight = 0
        self._http: dict[tuple[str, str, int, str], list[float]] = {}
        r.register(_HttpRequestCollector(self))
        Gauge(
            "failwhale_http_requests_in_flight",
            "HTTP requests being served right now.",
            ["service", "replica"],
            registry=r,
        ).labels(service, replica).set_function(lambda: self.in_flight)
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
        self.architecture_lease_lapses = Counter(
            "failwhale_architecture_lease_lapses_total",
            "Times a leased architecture change lapsed unrenewed and this process went back to its baseline.",
            ["service", "replica"],
            registry=r,
        ).labels(service, replica)
        self.ready = Gauge(
            "failwhale_service_ready",
            "1 when the process reports ready on /readyz (process health, not user health).",
            ["service", "replica"],
            registry=r,
        ).labels(service, replica)
        self._upstream_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._version: str | None = None

    def observe_request(self, route: str, method: str, code: int, client: str, seconds: float) -> None:
        # Runs on every request of every hop: two updates of one flat list (see _SLOTS).
        key = (route, method, code, client)
        series = self._http.get(key)
        if series is None:
            series = self._http[key] = [0.0] * _SERIES_LEN
        series[0] += seconds
        series[bisect_left(_SLOTS, seconds)] += 1

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

    def watch_lease(self, seconds_left: Callable[[], float]) -> None:
        """Export ``seconds_left()`` (read at each scrape) as the time left on this process's
        architecture lease: 0 when it runs its baseline or a change kept for good."""
        Gauge(
            "failwhale_architecture_lease_seconds",
            "Seconds until this process's architecture change lapses back to its baseline unless "
            "renewed; 0 when it runs its baseline or a change kept for good.",
            ["service", "replica"],
            registry=self.registry,
        ).labels(self.service, self.replica).set_function(seconds_left)

    def set_version(self, version: str) -> None:
        if self._version is not None and self._version != version:
            self.deploy_info.remove(self.service, self.replica, self._version)
            self.architecture_swaps.inc()
        self.deploy_info.labels(self.service, self.replica, version).set(1)
        self._version = version


_LE = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]


class _HttpRequestCollector:
    """failwhale_http_requests_total and _request_duration_seconds from HttpMetrics' plain counts."""

    def __init__(self, metrics: HttpMetrics) -> None:
        self.m = metrics

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "failwhale_http_requests_total",
                "HTTP requests served, by route, method, status code and client class.",
                labels=["service", "replica", "route", "method", "code", "client"],
            ),
            HistogramMetricFamily(
                "failwhale_http_request_duration_seconds",
                "Time to serve an HTTP request, by route, method and client class.",
                labels=["service", "replica", "route", "method", "client"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        s, r = self.m.service, self.m.replica
        requests, latency = self._families()
        by_series: dict[tuple[str, str, str], list[float]] = {}  # the histogram has no code label
        for (route, method, code, client), series in list(self.m._http.items()):
            requests.add_metric([s, r, route, method, str(code), client], sum(series[1:]))
            agg = by_series.get((route, method, client))
            by_series[(route, method, client)] = (
                series[:] if agg is None else [a + b for a, b in zip(agg, series, strict=True)]
            )
        for (route, method, client), (total, *buckets) in by_series.items():
            latency.add_metric([s, r, route, method, client], list(zip(_LE, accumulate(buckets), strict=True)), total)
        yield requests
        yield latency

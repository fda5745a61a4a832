"""Request accounting: each observation lands on exactly the labels given, and a process
always shows exactly one architecture version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.common.app import METRICS
from services.common.metrics import LATENCY_BUCKETS, HttpMetrics


def series(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name``: its full label set -> value."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name
    }


def test_each_metrics_object_has_its_own_registry():
    a, b = HttpMetrics("auth", "auth"), HttpMetrics("auth", "auth")
    assert a.registry is not b.registry
    a.observe_request("/x", "GET", 200, "web", 0.01)
    assert series(b.registry, "failwhale_http_requests_total") == {}


def test_observe_request_counts_with_exactly_the_given_labels():
    m = HttpMetrics("api", "api-1")
    m.observe_request("home_timeline", "GET", 200, "app", 0.003)
    m.observe_request("home_timeline", "GET", 200, "app", 0.004)
    m.observe_request("home_timeline", "GET", 503, "web", 0.2)
    labels = {"service": "api", "replica": "api-1", "route": "home_timeline", "method": "GET"}
    assert series(m.registry, "failwhale_http_requests_total") == {
        tuple(sorted({**labels, "code": "200", "client": "app"}.items())): 2.0,
        tuple(sorted({**labels, "code": "503", "client": "web"}.items())): 1.0,
    }


def test_observe_request_feeds_the_latency_histogram():
    m = HttpMetrics("api", "api-1")
    m.observe_request("trends", "GET", 200, "other", 0.003)
    m.observe_request("trends", "GET", 500, "other", 0.7)
    get = m.registry.get_sample_value
    labels = {"service": "api", "replica": "api-1", "route": "trends", "method": "GET", "client": "other"}
    # The histogram has no code label: both requests are in one series.
    assert get("failwhale_http_request_duration_seconds_count", labels) == 2
    assert abs(get("failwhale_http_request_duration_seconds_sum", labels) - 0.703) < 1e-9
    below = min(b for b in LATENCY_BUCKETS if b >= 0.003)
    assert get("failwhale_http_request_duration_seconds_bucket", {**labels, "le": str(below)}) == 1
    assert get("failwhale_http_request_duration_seconds_bucket", {**labels, "le": "+Inf"}) == 2
    assert get("failwhale_http_request_duration_seconds_count", {**labels, "client": "web"}) is None


def test_observe_upstream_counts_by_outcome():
    m = HttpMetrics("timeline", "timeline")
    m.observe_upstream("tweets", "ok", 0.01)
    m.observe_upstream("tweets", "timeout", 1.0)
    m.observe_upstream("tweets", "timeout", 1.0)
    got = series(m.registry, "failwhale_upstream_requests_total")
    base = {"service": "timeline", "replica": "timeline", "upstream": "tweets"}
    assert got == {
        tuple(sorted({**base, "outcome": "ok"}.items())): 1.0,
        tuple(sorted({**base, "outcome": "timeout"}.items())): 2.0,
    }
    assert m.registry.get_sample_value("failwhale_upstream_request_duration_seconds_count", base) == 3


def test_set_version_leaves_exactly_one_deploy_info_series():
    m = HttpMetrics("api", "api-2")
    for version in ("v1", "v2", "v2", "v3", "v1"):
        m.set_version(version)
        got = series(m.registry, "failwhale_deploy_info")
        assert got == {(("replica", "api-2"), ("service", "api"), ("version", version)): 1.0}


def test_set_version_counts_real_swaps_only():
    m = HttpMetrics("api", "api-2")
    m.set_version("v1")
    m.set_version("v1")
    swaps = {"service": "api", "replica": "api-2"}
    assert m.registry.get_sample_value("failwhale_architecture_swaps_total", swaps) == 0
    m.set_version("v2")
    m.set_version("v2")
    m.set_version("v1")
    assert m.registry.get_sample_value("failwhale_architecture_swaps_total", swaps) == 2


async def test_a_running_service_exposes_its_metrics(start_service, http):
    svc = await start_service("notifications")
    async with http.get(f"{svc.url}/internal/notifications", headers={"X-Client": "app"}) as resp:
        assert resp.status == 200
    async with http.get(f"{svc.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    labels = 'client="app",code="200",method="GET",replica="notifications",route="/internal/notifications",service="notifications"'
    assert f"failwhale_http_requests_total{{{labels}}} 1.0" in text
    assert 'failwhale_service_ready{replica="notifications",service="notifications"} 1.0' in text
    assert 'failwhale_deploy_info{replica="notifications",service="notifications",version="v1"} 1.0' in text
    # The /metrics request itself is in flight while it is served; nothing else is.
    assert 'failwhale_http_requests_in_flight{replica="notifications",service="notifications"} 1.0' in text


async def test_ready_gauge_follows_the_service_lifecycle(start_service, http):
    svc = await start_service("auth")
    labels = {"service": "auth", "replica": "auth"}
    registry = svc.app[METRICS].registry
    async with http.get(f"{svc.url}/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["ready"] is True
    assert registry.get_sample_value("failwhale_service_ready", labels) == 1
    await svc.server.close()
    assert registry.get_sample_value("failwhale_service_ready", labels) == 0
    assert registry.get_sample_value("failwhale_http_requests_in_flight", labels) == 0

"""The edge in front of real API replicas and backends: round robin, retry on another replica,
passive ejection, non-idempotent requests, and total failure, all over real HTTP."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.architecture import parse_architecture
from services.auth.app import LAB_PASSWORD
from services.edge.app import Pool
from tests.conftest import TOKEN, metric_value

REPLICAS = ["api-1", "api-2"]


def two_replicas(arch_data, **edge):
    """v1 with api-1 and api-2 behind the edge, edge settings overridden by ``edge``."""
    arch_data["api"]["instances"] = list(REPLICAS)
    arch_data["edge"].update(edge)
    return parse_architecture(arch_data)


async def start_lab(start_service, a, replicas=REPLICAS, backends=("auth", "timeline", "tweets", "notifications")):
    running = {}
    for name in (*backends, *replicas, "edge"):
        running[name] = await start_service(name, architecture=a)
    return running


async def guest_token(http, auth) -> str:
    """A guest token straight from auth, so the edge's rotation sees only the requests under test."""
    async with http.post(f"{auth.url}/internal/guest/activate") as resp:
        return (await resp.json())["guest_token"]


async def get(http, url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def served(replica, route) -> float:
    return metric_value(replica.app, "failwhale_http_requests_total", route=route)


async def test_requests_are_spread_round_robin(start_service, http, arch_data):
    lab = await start_lab(start_service, two_replicas(arch_data))
    token = await guest_token(http, lab["auth"])
    n = 3 * len(REPLICAS)
    for i in range(n):
        status, body, _ = await get(http, f"{lab['edge'].url}/api/1.1/users/user{i + 1:04d}.json", token)
        assert (status, body["screen_name"]) == (200, f"user{i + 1:04d}")
    assert [served(lab[r], "user") for r in REPLICAS] == [n / len(REPLICAS)] * len(REPLICAS)
    assert metric_value(lab["edge"].app, "failwhale_http_requests_total", route="api", code="200") == n


async def test_dead_replica_is_retried_elsewhere_then_ejected(start_service, http, arch_data):
    a = two_replicas(arch_data)
    lab = await start_lab(start_service, a, replicas=["api-1"])  # api-2 is down
    edge, eject_after = lab["edge"], a.edge.eject_after_failures
    token = await guest_token(http, lab["auth"])
    n = 2 * eject_after + 2
    for _ in range(n):
        status, body, _ = await get(http, f"{edge.url}/api/1.1/trends.json", token)
        assert status == 200, body
    assert served(lab["api-1"], "trends") == n
    assert metric_value(edge.app, "failwhale_edge_replica_ejected", upstream="api-2") == 1
    assert metric_value(edge.app, "failwhale_edge_replica_ejected", upstream="api-1") == 0
    assert metric_value(edge.app, "failwhale_edge_ejections_total", upstream="api-2") == 1
    # Once ejected, the dead replica is not tried again: exactly eject_after attempts reached it.
    assert (
        metric_value(edge.app, "failwhale_upstream_requests_total", upstream="api-2", outcome="connection_error")
        == eject_after
    )


async def test_ejection_ends_after_eject_for_s(start_service, http, arch_data):
    # Long enough for the four requests below to fit inside it even on a busy machine.
    a = two_replicas(arch_data, eject_after_failures=1, eject_for_s=0.5)
    lab = await start_lab(start_service, a, replicas=["api-1"])
    edge = lab["edge"]
    token = await guest_token(http, lab["auth"])
    for _ in range(4):
        assert (await get(http, f"{edge.url}/api/1.1/trends.json", token))[0] == 200
    tried = metric_value(edge.app, "failwhale_upstream_requests_total", upstream="api-2")
    assert tried == 1
    await asyncio.sleep(0.6)
    for _ in range(2):
        assert (await get(http, f"{edge.url}/api/1.1/trends.json", token))[0] == 200
    # Back in rotation: tried (and failed) once more, and ejected again.
    assert metric_value(edge.app, "failwhale_upstream_requests_total", upstream="api-2") == tried + 1
    assert metric_value(edge.app, "failwhale_edge_ejections_total", upstream="api-2") == 2


async def test_post_to_a_dead_replica_is_not_retried(start_service, http, arch_data):
    """As documented on EdgeSection.retries: another replica is tried for idempotent requests only."""
    lab = await start_lab(start_service, two_replicas(arch_data), replicas=["api-1"], backends=("auth",))
    edge = lab["edge"]
    answers = []
    for _ in REPLICAS:  # one full turn of the rotation: each replica gets one POST
        async with http.post(f"{edge.url}/api/1.1/guest/activate.json") as resp:
            answers.append((resp.status, await resp.json()))
    assert sorted(status for status, _ in answers) == [200, 502]
    failed = next(body for status, body in answers if status == 502)
    assert "api-2" in failed["errors"][0]["message"]
    assert served(lab["api-1"], "guest_activate") == 1  # the failed POST was not sent on to api-1
    assert (
        metric_value(edge.app, "failwhale_upstream_requests_total", upstream="api-2", outcome="connection_error") == 1
    )


async def test_replica_5xx_answers_pass_through_without_retry_or_ejection(start_service, http, arch_data):
    arch_data["api"]["upstreams"]["notifications"]["retries"] = 0  # fail fast inside the replica
    a = two_replicas(arch_data)
    lab = await start_lab(start_service, a, backends=("auth", "timeline", "tweets"))  # notifications down
    edge = lab["edge"]
    token = await guest_token(http, lab["auth"])
    # Each replica answers 502 more times in a row than it would take to eject it.
    n = (a.edge.eject_after_failures + 1) * len(REPLICAS)
    for _ in range(n):
        status, body, _ = await get(http, f"{edge.url}/api/1.1/notifications.json", token)
        assert status == 502
        assert "notifications" in body["errors"][0]["message"]
    assert [served(lab[r], "notifications") for r in REPLICAS] == [n / len(REPLICAS)] * len(REPLICAS)
    assert metric_value(edge.app, "failwhale_edge_ejections_total") == 0


async def test_rate_limit_reaches_the_client_through_the_edge(start_service, http, arch_data):
    arch_data["backends"]["auth"]["buckets"]["login"] = {"rate_per_s": 0.01, "burst": 1}
    lab = await start_lab(start_service, two_replicas(arch_data), backends=("auth",))
    creds = {"username": "user0001", "password": LAB_PASSWORD}
    statuses = []
    for _ in range(2):
        async with http.post(f"{lab['edge'].url}/api/1.1/auth/login.json", json=creds) as resp:
            statuses.append(resp.status)
            last = (await resp.json(), resp.headers)
    assert statuses == [200, 429]
    body, headers = last
    assert body["errors"][0]["message"] == "Rate limit exceeded"
    assert int(headers["Retry-After"]) >= 1


async def test_slow_replicas_time_out_with_504(start_service, http, arch_data):
    arch_data["backends"]["timeline"].update(build_ms=400, cache_ttl_s=0)
    a = two_replicas(arch_data, timeout_s=0.1, retries=0)
    lab = await start_lab(start_service, a)
    token = await guest_token(http, lab["auth"])
    status, body, _ = await get(http, f"{lab['edge'].url}/api/1.1/timeline/home.json", token)
    assert status == 504
    assert "timed out" in body["errors"][0]["message"]


async def test_all_replicas_down_is_502_json_never_500(start_service, http, arch_data):
    a = two_replicas(arch_data)
    edge = await start_service("edge", architecture=a)
    # Enough requests to eject every replica and go on in panic mode.
    for i in range(2 * a.edge.eject_after_failures * len(REPLICAS)):
        method = "POST" if i % 3 == 0 else "GET"
        async with http.request(method, f"{edge.url}/api/1.1/trends.json") as resp:
            assert resp.status == 502
            assert resp.content_type == "application/json"
            assert (await resp.json())["errors"][0]["message"]
    assert metric_value(edge.app, "failwhale_http_requests_total", code="500") == 0
    for r in REPLICAS:
        assert metric_value(edge.app, "failwhale_edge_replica_ejected", upstream=r) == 1


async def test_edge_follows_a_replica_list_swap(start_service, http, arch_data):
    a = two_replicas(arch_data)
    lab = await start_lab(start_service, a)
    token = await guest_token(http, lab["auth"])
    arch_data["api"]["instances"] = ["api-1"]
    doc = {"architecture": parse_architecture(arch_data).model_dump(mode="json")}
    async with http.put(
        f"{lab['edge'].url}/control/architecture", json=doc, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 200
    for _ in range(4):
        assert (await get(http, f"{lab['edge'].url}/api/1.1/trends.json", token))[0] == 200
    assert (served(lab["api-1"], "trends"), served(lab["api-2"], "trends")) == (4, 0)


async def test_a_drained_replica_gets_nothing_until_it_is_undrained(start_service, http, arch_data):
    lab = await start_lab(start_service, two_replicas(arch_data))
    edge = lab["edge"]
    token = await guest_token(http, lab["auth"])
    drained = parse_architecture(
        {**arch_data, "version": "v1-drain", "edge": {**arch_data["edge"], "drained": ["api-2"]}}
    )
    async with http.put(
        f"{edge.url}/control/architecture",
        json={"architecture": drained.model_dump(mode="json")},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        assert resp.status == 200
    for _ in range(4):
        assert (await get(http, f"{edge.url}/api/1.1/trends.json", token))[0] == 200
    assert (served(lab["api-1"], "trends"), served(lab["api-2"], "trends")) == (4, 0)
    assert metric_value(edge.app, "failwhale_edge_replica_drained", upstream="api-2") == 1
    async with http.post(
        f"{edge.url}/control/architecture/baseline", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 200
    for _ in range(4):
        assert (await get(http, f"{edge.url}/api/1.1/trends.json", token))[0] == 200
    assert served(lab["api-2"], "trends") == 2
    assert metric_value(edge.app, "failwhale_edge_replica_drained", upstream="api-2") == 0


def test_the_ejected_gauge_follows_the_pool_when_replicas_are_drained():
    registry = CollectorRegistry()
    gauge = Gauge("ejected", "", ["service", "replica", "upstream"], registry=registry)
    ejections = Counter("ejections_total", "", ["service", "replica", "upstream"], registry=registry)
    pool = Pool(["api-1", "api-2", "api-3"], gauge, ejections, ("edge", "edge"))

    def shown(name: str) -> float | None:
        return registry.get_sample_value("ejected", {"service": "edge", "replica": "edge", "upstream": name})

    for r in pool.replicas[:2]:
        pool.failed(r, eject_after=1, eject_for=60)
    assert shown("api-1") == shown("api-2") == 1
    pool.set_replicas(["api-1", "api-3"])  # api-2 drained
    # api-1 is still ejected and says so; api-2 is out of the pool, not ejected by it.
    assert shown("api-1") == 1 and shown("api-2") == 0 and shown("api-3") == 0

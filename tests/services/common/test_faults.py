"""Faults through the control plane: token-guarded, all-or-nothing, and gone when their TTL lapses."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.conftest import TOKEN, metric_value

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def inject(http, svc, *specs, status=201):
    async with http.post(f"{svc.url}/control/faults", json={"faults": list(specs)}, headers=AUTH) as resp:
        body = await resp.json()
        assert resp.status == status, body
        return body


async def get_status(http, url, **kw) -> int:
    async with http.get(url, **kw) as resp:
        await resp.read()
        return resp.status


async def test_a_fault_needs_the_token_and_a_bad_token_changes_nothing(start_service, http):
    svc = await start_service("notifications")
    spec = {"kind": "error", "status": 500}
    async with http.post(f"{svc.url}/control/faults", json={"faults": [spec]}) as resp:
        assert resp.status == 401
    async with http.post(
        f"{svc.url}/control/faults", json={"faults": [spec]}, headers={"Authorization": "Bearer wrong"}
    ) as resp:
        assert resp.status == 401
    assert await get_status(http, f"{svc.url}/internal/notifications") == 200


async def test_error_fault_answers_like_the_api_and_lapses_by_itself(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "error", "status": 429, "retry_after_s": 2, "ttl_s": 0.4})
    async with http.get(f"{svc.url}/internal/notifications", headers={"X-Client": "web"}) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        assert (await resp.json())["errors"][0]["message"] == "Rate limit exceeded"
    # Injected answers are measured like any other, by client.
    assert metric_value(svc.app, "failwhale_http_requests_total", code="429", client="web") == 1
    # Health and metrics stay green: process health is not user health.
    assert await get_status(http, f"{svc.url}/readyz") == 200
    await asyncio.sleep(0.5)
    assert await get_status(http, f"{svc.url}/internal/notifications") == 200
    async with http.get(f"{svc.url}/control/faults", headers=AUTH) as resp:
        assert (await resp.json())["faults"] == []
    assert metric_value(svc.app, "failwhale_faults_active", kind="error") == 0


async def test_active_faults_are_visible_in_metrics(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "error"}, {"kind": "error", "status": 500}, {"kind": "latency", "latency_ms": 1})
    assert metric_value(svc.app, "failwhale_faults_active", kind="error") == 2
    assert metric_value(svc.app, "failwhale_faults_active", kind="latency") == 1
    assert metric_value(svc.app, "failwhale_faults_active", kind="abort") == 0


async def test_faults_match_by_path_prefix_method_and_probability(start_service, http):
    svc = await start_service("tweets")
    await inject(http, svc, {"kind": "error", "status": 503, "path_prefix": "/internal/tweets/recent", "method": "GET"})
    assert await get_status(http, f"{svc.url}/internal/tweets/recent") == 503
    assert await get_status(http, f"{svc.url}/internal/tweets/1") == 200
    async with http.delete(f"{svc.url}/control/faults", headers=AUTH) as resp:
        assert (await resp.json()) == {"removed": 1}
    await inject(http, svc, {"kind": "error", "status": 500, "probability": 0.5})
    statuses = [await get_status(http, f"{svc.url}/internal/tweets/1") for _ in range(200)]
    assert 60 < statuses.count(500) < 140


async def test_a_batch_with_one_bad_fault_applies_none(start_service, http):
    svc = await start_service("notifications")
    body = await inject(http, svc, {"kind": "error"}, {"kind": "latency", "status": 500}, status=400)
    message = body["errors"][0]["message"]
    assert message.startswith("faults[1]:1:") and "status does not apply to a latency fault" in message
    for bad, needle in [
        ({"kind": "melt"}, "kind: Input should be"),
        ({"kind": "error", "ttl_s": -1}, "ttl_s: Input should be greater than 0"),
        ({"kind": "error", "ttl_s": 7200}, "ttl_s: Input should be less than or equal to 3600"),
        ({"kind": "capacity"}, "needs max_in_flight"),
        ({"kind": "error", "colour": "red"}, "colour: unknown field"),
    ]:
        body = await inject(http, svc, bad, status=400)
        assert needle in body["errors"][0]["message"], body
    async with http.get(f"{svc.url}/control/faults", headers=AUTH) as resp:
        assert (await resp.json())["faults"] == []


async def test_latency_fault_slows_matching_requests(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "latency", "latency_ms": 300, "ttl_s": 5})
    start = time.perf_counter()
    assert await get_status(http, f"{svc.url}/internal/notifications") == 200
    assert time.perf_counter() - start >= 0.3


async def test_abort_resets_the_callers_connection(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "abort"})
    with pytest.raises(aiohttp.ClientError):
        await get_status(http, f"{svc.url}/internal/notifications")


async def test_blackhole_hangs_until_the_caller_gives_up_then_lapses(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "blackhole", "ttl_s": 0.6})
    with pytest.raises(asyncio.TimeoutError):
        await get_status(http, f"{svc.url}/internal/notifications", timeout=aiohttp.ClientTimeout(total=0.2))
    await asyncio.sleep(0.6)
    assert await get_status(http, f"{svc.url}/internal/notifications") == 200


@pytest.mark.parametrize(
    "spec",
    [{"kind": "blackhole", "ttl_s": 30}, {"kind": "latency", "latency_ms": 30000, "ttl_s": 60}],
    ids=["blackhole", "latency"],
)
async def test_requests_a_fault_holds_wake_up_when_it_is_removed(start_service, http, spec):
    svc = await start_service("notifications")
    await inject(http, svc, spec)
    parked = asyncio.ensure_future(get_status(http, f"{svc.url}/internal/notifications"))
    await asyncio.sleep(0.3)
    assert not parked.done()
    started = time.monotonic()
    async with http.delete(f"{svc.url}/control/faults", headers=AUTH) as resp:
        assert (await resp.json()) == {"removed": 1}
    assert await asyncio.wait_for(parked, 2) == 200  # served as if never held, not after 30 s
    assert time.monotonic() - started < 1.0


async def test_a_process_holds_at_most_64_active_faults(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, *[{"kind": "latency", "latency_ms": 1}] * 60)
    body = await inject(http, svc, *[{"kind": "latency", "latency_ms": 1}] * 5, status=400)
    assert body["errors"][0]["message"] == "A process holds at most 64 active faults: 60 active, 5 more asked for"
    async with http.get(f"{svc.url}/control/faults", headers=AUTH) as resp:
        assert len((await resp.json())["faults"]) == 60  # none of the five applied


async def test_capacity_cut_turns_away_what_does_not_fit(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "latency", "latency_ms": 300}, {"kind": "capacity", "max_in_flight": 2})
    statuses = await asyncio.gather(*(get_status(http, f"{svc.url}/internal/notifications") for _ in range(5)))
    assert sorted(statuses) == [200, 200, 503, 503, 503]


async def test_reroute_sends_a_dependency_somewhere_that_does_not_exist(start_service, http):
    for name in ("auth", "timeline", "tweets", "notifications"):
        await start_service(name)
    api = await start_service("api-1")
    async with http.post(f"{api.url}/api/1.1/guest/activate.json") as resp:
        token = (await resp.json())["guest_token"]
    timeline = f"{api.url}/api/1.1/timeline/home.json"
    headers = {"Authorization": f"Bearer {token}"}
    await inject(http, api, {"kind": "reroute", "upstream_service": "timeline", "to_service": "timeline-v2"})
    async with http.get(timeline, headers=headers) as resp:
        assert resp.status == 502
        assert "timeline-v2" in (await resp.json())["errors"][0]["message"]
    async with http.get(f"{api.url}/control/faults", headers=AUTH) as resp:
        (fault,) = (await resp.json())["faults"]
    async with http.delete(f"{api.url}/control/faults/{fault['id']}", headers=AUTH) as resp:
        assert resp.status == 200
    assert await get_status(http, timeline, headers=headers) == 200


async def test_control_plane_is_never_locked_out_by_a_fault(start_service, http):
    svc = await start_service("notifications")
    await inject(http, svc, {"kind": "blackhole", "ttl_s": 30})
    async with http.delete(f"{svc.url}/control/faults", headers=AUTH, timeout=aiohttp.ClientTimeout(total=2)) as resp:
        assert (await resp.json()) == {"removed": 1}
    assert await get_status(http, f"{svc.url}/internal/notifications") == 200


async def test_restore_baseline_undoes_an_architecture_swap(start_service, http, arch_data):
    svc = await start_service("api-1")
    arch_data["version"] = "v2"
    async with http.put(f"{svc.url}/control/architecture", json={"architecture": arch_data}, headers=AUTH) as resp:
        assert resp.status == 200
    async with http.post(f"{svc.url}/control/architecture/baseline", headers=AUTH) as resp:
        assert await resp.json() == {"version": "v1", "previous": "v2"}
    assert metric_value(svc.app, "failwhale_deploy_info", version="v1") == 1


async def test_rate_limit_change_squeezes_logins_until_it_lapses(start_service, http):
    auth = await start_service("auth")
    body = {"username": "user0001", "password": "failwhale"}
    await inject(http, auth, {"kind": "rate_limit", "bucket": "login", "rate_per_s": 0.1, "burst": 2, "ttl_s": 0.5})
    statuses = []
    for _ in range(4):
        async with http.post(f"{auth.url}/internal/login", json=body) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                assert (await resp.json())["errors"][0]["message"] == "Rate limit exceeded"
    assert statuses == [200, 200, 429, 429]
    await asyncio.sleep(0.6)
    for _ in range(5):  # the architecture's own bucket (burst 100) is back
        async with http.post(f"{auth.url}/internal/login", json=body) as resp:
            assert resp.status == 200


async def test_rate_limit_fault_needs_its_fields(start_service, http):
    svc = await start_service("auth")
    body = await inject(http, svc, {"kind": "rate_limit", "bucket": "login"}, status=400)
    assert "needs bucket, rate_per_s and burst" in body["errors"][0]["message"]


async def test_a_fault_can_target_an_api_route_by_name(start_service, http):
    for name in ("auth", "timeline", "tweets", "notifications"):
        await start_service(name)
    api = await start_service("api-1")
    async with http.post(f"{api.url}/api/1.1/guest/activate.json") as resp:
        headers = {"Authorization": f"Bearer {(await resp.json())['guest_token']}"}
    await inject(http, api, {"kind": "error", "status": 503, "route": "home_timeline"})
    assert await get_status(http, f"{api.url}/api/1.1/timeline/home.json", headers=headers) == 503
    assert await get_status(http, f"{api.url}/api/1.1/trends.json", headers=headers) == 200
    assert metric_value(api.app, "failwhale_http_requests_total", route="home_timeline", code="503") == 1


async def test_a_fault_can_target_a_backend_route_by_its_path_template(start_service, http):
    svc = await start_service("tweets")
    await inject(http, svc, {"kind": "error", "status": 500, "route": "/internal/tweets/{id}"})
    assert await get_status(http, f"{svc.url}/internal/tweets/1") == 500
    assert await get_status(http, f"{svc.url}/internal/tweets/recent") == 200

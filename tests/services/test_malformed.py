"""Malformed requests to every lab process: each gets a 4xx with a JSON reason, never a 5xx, and
every process is still ready afterwards. The whole lab runs in-process on its real ports, so a
request a proxy passes on meets the real backend behind it."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.conftest import TOKEN

INSTANCES = ["web", "edge", "api-1", "api-2", "api-3", "api-4", "auth", "timeline", "tweets", "notifications"]
CONTROL = {"Authorization": f"Bearer {TOKEN}"}
DEEP = "[" * 100_000 + "]" * 100_000  # RecursionError in json.loads without a guard
NESTED_OBJECT = '{"a":' * 40 + "1" + "}" * 40  # valid JSON, too deep for any route
HUGE_INT = "9" * 5000  # int() refuses more than 4,300 digits
JSON = {"Content-Type": "application/json"}

# (method, path, headers, body): for every process.
COMMON = [
    ("PUT", "/control/architecture", CONTROL, DEEP),
    ("PUT", "/control/architecture", CONTROL, NESTED_OBJECT),
    ("PUT", "/control/architecture", CONTROL, '{"architecture": {}, "lease_s": ' + HUGE_INT + "}"),
    ("PUT", "/control/architecture", CONTROL, '{"architecture": "v2"}'),
    ("PUT", "/control/architecture", CONTROL, '{"architecture": {"version": 7}}'),
    ("PUT", "/control/architecture", CONTROL, "[1, 2]"),
    ("PUT", "/control/architecture", CONTROL, "not json"),
    ("PUT", "/control/architecture", CONTROL, ""),
    ("PUT", "/control/architecture", CONTROL, b"\xff\xfe\x00"),
    ("PUT", "/control/architecture", {}, "{}"),
    ("PUT", "/control/architecture", {"Authorization": "Bearer \u00e9\u00e9"}, "{}"),
    ("PUT", "/control/architecture", {"Authorization": "Basic " + "A" * 2000}, "{}"),
    ("POST", "/control/architecture/renew", CONTROL, '{"version": 7}'),
    ("POST", "/control/architecture/renew", CONTROL, '{"version": "v9", "lease_s": 1e400}'),
    ("POST", "/control/architecture/renew", CONTROL, DEEP),
    ("POST", "/control/faults", CONTROL, DEEP),
    ("POST", "/control/faults", CONTROL, '{"faults": "all"}'),
    ("POST", "/control/faults", CONTROL, '{"faults": [{"kind": "melt"}]}'),
    ("POST", "/control/faults", CONTROL, '{"faults": [{"kind": "error", "ttl_s": 1e400}]}'),
    ("POST", "/control/faults", CONTROL, '{"faults": [{"kind": "error", "ttl_s": ' + HUGE_INT + "}]}"),
    ("POST", "/control/faults", CONTROL, '{"faults": [{"kind": "latency", "latency_ms": -5}]}'),
    (
        "POST",
        "/control/faults",
        CONTROL,
        '{"faults": [' + ",".join(['{"kind": "error", "ttl_s": 0.001}'] * 5000) + "]}",
    ),
    ("DELETE", f"/control/faults/{HUGE_INT}", CONTROL, None),
    ("DELETE", "/control/faults/-1", CONTROL, None),
    ("DELETE", "/control/faults/%00", CONTROL, None),
    ("POST", "/control/caches/melt", CONTROL, None),
    ("POST", "/control/caches/flush?name=" + "x" * 3000, CONTROL, None),
    ("GET", "/control/faults", {"Authorization": "Bearer wrong"}, None),
    ("GET", "/healthz/%ff%fe", {}, None),
    ("GET", "/" + "a" * 3000, {}, None),
    ("GET", "/metrics?x=%00%ff", {}, None),
    ("PATCH", "/readyz", {}, None),
    ("POST", "/healthz", JSON, DEEP),
    ("GET", "/%2e%2e/%2e%2e/etc/passwd", {}, None),
    ("GET", "/control/architecture", {"Authorization": "Bearer " + TOKEN + "x"}, None),
    ("POST", "/control/architecture/baseline", {}, None),
    ("PUT", "/control/architecture", CONTROL, '{"architecture": {}, "keep": "yes"}'),
    ("PUT", "/control/architecture", CONTROL, '{"architecture": {}, "lease_s": true}'),
    ("PUT", "/control/architecture", CONTROL, '{"architecture": ' + NESTED_OBJECT + "}"),
    (
        "POST",
        "/control/faults",
        CONTROL,
        '{"faults": [{"kind": "error", "path_prefix": ' + json.dumps("/" * 5000) + "}]}",
    ),
]

PUBLIC_API = [  # through the edge or an API replica to the backends behind them
    ("POST", "/api/1.1/auth/login.json", JSON, DEEP),
    ("POST", "/api/1.1/auth/login.json", JSON, NESTED_OBJECT),
    ("POST", "/api/1.1/auth/login.json", JSON, '{"username": ' + HUGE_INT + ', "password": 1}'),
    ("POST", "/api/1.1/auth/session.json", JSON, DEEP),
    ("POST", "/api/1.1/guest/activate.json", JSON, DEEP),
    ("GET", f"/api/1.1/users/user{HUGE_INT}.json", {}, None),
    ("GET", f"/api/1.1/statuses/{HUGE_INT}.json", {}, None),
    ("GET", f"/api/1.1/timeline/home.json?count={HUGE_INT}", {}, None),
    ("POST", "/api/1.1/statuses/update.json", {"Authorization": "Bearer " + "x" * 5000, **JSON}, DEEP),
    ("GET", "/api/1.1/trends.json", {"Authorization": "Bearer !!! ???"}, None),
]

BY_KIND = {
    "auth": [
        ("POST", "/internal/login", JSON, DEEP),
        ("POST", "/internal/login", JSON, NESTED_OBJECT),
        ("POST", "/internal/verify", JSON, DEEP),
        ("POST", "/internal/verify", JSON, '{"token": ' + HUGE_INT + "}"),
        ("POST", "/internal/session", JSON, '{"session": [1, 2]}'),
        ("GET", f"/internal/users/user{HUGE_INT}", {}, None),
        ("GET", "/internal/users/user%00", {}, None),
        ("POST", "/internal/logout", JSON, DEEP),
    ],
    "tweets": [
        ("GET", f"/internal/tweets/{HUGE_INT}", {}, None),
        ("GET", f"/internal/tweets/recent?limit={HUGE_INT}", {}, None),
        ("POST", "/internal/tweets", {"X-User": "user0001", **JSON}, DEEP),
        ("POST", "/internal/tweets", {"X-User": "user0001", **JSON}, '{"text": ' + HUGE_INT + "}"),
        ("POST", "/internal/tweets", {"X-User": "user0001", **JSON}, '{"text": {"a": 1}}'),
    ],
    "timeline": [
        ("GET", f"/internal/timeline/home?count={HUGE_INT}", {}, None),
        ("GET", "/internal/timeline/home?count=-1", {}, None),
        ("GET", "/internal/trends?x=" + "%" * 100, {}, None),
    ],
    "notifications": [("GET", "/internal/notifications?count=" + HUGE_INT, {}, None)],
    "web": [
        ("POST", "/control/status", CONTROL, DEEP),
        ("POST", "/control/status", CONTROL, '{"state": ' + HUGE_INT + "}"),
        *PUBLIC_API,
    ],
    "edge": PUBLIC_API,
    "api": PUBLIC_API,
}


def requests_for(instance: str) -> list[tuple[str, str, dict, object]]:
    kind = instance.split("-")[0]
    return [*COMMON, *BY_KIND.get(kind, [])]


def test_every_process_gets_at_least_40_malformed_requests():
    assert all(len(requests_for(i)) >= 40 for i in INSTANCES), {i: len(requests_for(i)) for i in INSTANCES}


async def test_no_malformed_request_gets_a_5xx_and_every_process_stays_ready(start_service, http):
    running = {name: await start_service(name) for name in INSTANCES}
    bad = []
    for name, svc in running.items():
        for method, path, headers, body in requests_for(name):
            data = body.encode() if isinstance(body, str) else body
            url = URL(svc.url + path, encoded=True)
            async with http.request(method, url, headers=headers, data=data) as resp:
                text = await resp.text(errors="replace")
                if resp.status >= 500 or "Traceback" in text:
                    bad.append(f"{name} {method} {path[:60]} -> {resp.status} {text[:120]}")
    assert bad == [], "\n".join(bad)
    for name, svc in running.items():
        async with http.get(svc.url + "/readyz") as resp:
            assert resp.status == 200, name


@pytest.mark.parametrize("path", ["/api/1.1/trends.json", "/api/1.1/timeline/home.json"])
async def test_the_public_api_still_answers_after_the_barrage(start_service, http, path):
    running = {name: await start_service(name) for name in INSTANCES}
    for method, p, headers, body in PUBLIC_API:
        async with http.request(
            method,
            URL(running["edge"].url + p, encoded=True),
            headers=headers,
            data=body.encode() if isinstance(body, str) else body,
        ) as resp:
            await resp.read()
    async with http.post(running["edge"].url + "/api/1.1/guest/activate.json") as resp:
        token = (await resp.json())["guest_token"]
    async with http.get(running["edge"].url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:18080", "127.0.0.1.nip.io", "127.0.0.1:1"])
async def test_a_foreign_host_header_is_refused(start_service, http, host):
    svc = await start_service("web")
    async with http.get(svc.url + "/status.json", headers={"Host": host}) as resp:
        assert resp.status == 421 and "not " in (await resp.json())["errors"][0]["message"]
    port = svc.url.rsplit(":", 1)[1]
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        async with http.get(svc.url + "/status.json", headers={"Host": own}) as resp:
            assert resp.status == 200, own


# ---- random bodies at the public API --------------------------------------------------------


@pytest.fixture(scope="module")
def lab_in_a_thread(tmp_path_factory):
    """Every service in-process, on its lab port, served by an event loop in a thread of its own
    (Hypothesis drives plain, blocking requests at it)."""
    import asyncio
    import threading

    from chaos.lab.ports import free_port_lab_config
    from services.architecture import load_architecture
    from services.config import load_lab_config
    from tests.conftest import V1, serve_instance

    lab = load_lab_config(free_port_lab_config(tmp_path_factory.mktemp("lab"), V1))
    arch = load_architecture(lab.architecture_path)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    servers = []

    async def start():
        for name in INSTANCES:
            servers.append((await serve_instance(lab, arch, name, TOKEN)).server)

    async def stop():
        for server in reversed(servers):
            await server.close()

    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield lab
    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)


ROUTES = [
    "/api/1.1/auth/login.json",
    "/api/1.1/auth/session.json",
    "/api/1.1/guest/activate.json",
    "/api/1.1/statuses/update.json",
    "/api/1.1/timeline/home.json",
    "/api/1.1/users/user0001.json",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    body=st.one_of(json_values.map(json.dumps), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
    auth=st.sampled_from(["", "Bearer ", "Bearer x", "Basic Zm9vOmJhcg=="]),
)
def test_random_bodies_at_the_public_api_never_get_a_5xx(lab_in_a_thread, route, method, body, auth):
    import http.client

    conn = http.client.HTTPConnection(lab_in_a_thread.host, lab_in_a_thread.port("edge"), timeout=10)
    try:
        headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
        conn.request(method, route, body=body.encode("utf-8", errors="surrogateescape"), headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
    finally:
        conn.close()
    assert resp.status < 500, (method, route, body[:100], resp.status, text[:200])

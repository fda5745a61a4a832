"""The built-in dashboard's server: the page, the spec as JSON, and read-only Prometheus access."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chaos.lab.ports import free_ports
from dashboards.app import STATIC, DashboardConfig, create_app
from dashboards.spec import default_spec
from tests.conftest import LabServer


async def _serve(app: web.Application) -> TestServer:
    server = LabServer(app, host="127.0.0.1", port=free_ports(1)[0])
    await server.start_server()
    return server


@pytest.fixture
async def fake_prometheus() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A stand-in that records what reaches it; the real Prometheus is in the integration tests."""
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = await _serve(app)
    yield f"http://127.0.0.1:{server.port}", seen
    await server.close()


@pytest.fixture
async def dashboard(fake_prometheus) -> AsyncIterator[str]:
    server = await _serve(create_app(DashboardConfig(prometheus_url=fake_prometheus[0])))
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_the_page_loads_its_vendored_chart_library_and_nothing_from_outside(dashboard, http):
    async with http.get(f"{dashboard}/") as resp:
        assert resp.status == 200
        page = await resp.text()
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page
    assert "http://" not in page and "https://" not in page
    async with http.get(f"{dashboard}/static/vendor/uplot/uPlot.iife.min.js") as resp:
        assert resp.status == 200
        assert len(await resp.read()) > 10_000


async def test_panels_json_is_the_spec_of_one_board(dashboard, http):
    async with http.get(f"{dashboard}/panels.json", params={"board": "api"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    spec = default_spec()
    assert body["board"]["id"] == "api"
    assert [p["id"] for p in body["panels"]] == [p.id for p in spec.panels_of("api")]
    assert body["clock"] == spec.clock and body["refresh_s"] == spec.refresh_s
    assert [b["id"] for b in body["boards"]] == ["overview", "web", "api", "backends"]


async def test_an_unknown_board_is_a_404_naming_the_boards(dashboard, http):
    async with http.get(f"{dashboard}/panels.json", params={"board": "nope"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"] == "no dashboard named 'nope'; there are: overview, web, api, backends"


async def test_queries_are_forwarded_with_their_parameters(dashboard, fake_prometheus, http):
    params = {"query": 'sum(rate(failwhale_journeys_total{client="web"}[15s]))', "start": "1", "end": "2", "step": "1"}
    async with http.get(f"{dashboard}/api/v1/query_range", params=params) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "success"
    (request,) = fake_prometheus[1]
    assert request.path == "/api/v1/query_range"
    assert dict(request.query) == params


@pytest.mark.parametrize("path", ["/api/v1/admin/tsdb/delete_series", "/api/v1/series", "/api/v1/label/x/values"])
async def test_nothing_but_the_two_read_endpoints_reaches_prometheus(dashboard, fake_prometheus, http, path):
    async with http.get(f"{dashboard}{path}") as resp:
        assert resp.status == 404
    async with http.post(f"{dashboard}/api/v1/query", data={"query": "up"}) as resp:
        assert resp.status == 405
    assert fake_prometheus[1] == []


async def test_a_prometheus_that_does_not_answer_is_a_502_with_one_line(http):
    closed = f"http://127.0.0.1:{free_ports(1)[0]}"
    server = await _serve(create_app(DashboardConfig(prometheus_url=closed)))
    try:
        async with http.get(f"http://127.0.0.1:{server.port}/api/v1/query", params={"query": "up"}) as resp:
            assert resp.status == 502
            body = await resp.json()
    finally:
        await server.close()
    assert body["status"] == "error"
    assert body["error"].startswith(f"Prometheus at {closed} did not answer")
    assert "\n" not in body["error"]


async def test_health_endpoint_for_the_supervisor(dashboard, http):
    async with http.get(f"{dashboard}/readyz") as resp:
        assert resp.status == 200


def test_the_vendored_chart_library_is_the_published_one():
    """uPlot is copied from npm unchanged: the files match the checksums its README records."""
    folder = STATIC / "vendor" / "uplot"
    recorded = dict(
        (name, digest)
        for digest, name in re.findall(r"^\s*([0-9a-f]{64})\s+(\S+)$", (folder / "README.md").read_text(), re.M)
    )
    assert set(recorded) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in recorded.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


async def test_a_request_for_another_host_is_refused_421(fake_prometheus, http):
    """DNS rebinding: a page on another site reaching 127.0.0.1 under its own name gets nothing."""
    port = free_ports(1)[0]
    server = LabServer(
        create_app(DashboardConfig(prometheus_url=fake_prometheus[0], address=("127.0.0.1", port))),
        host="127.0.0.1",
        port=port,
    )
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{port}"
        async with http.get(
            f"{url}/api/v1/query", params={"query": "up"}, headers={"Host": "rebind.example:80"}
        ) as resp:
            assert resp.status == 421 and "rebind.example" in (await resp.json())["error"]
        assert fake_prometheus[1] == []  # nothing reached Prometheus
        for own in (f"127.0.0.1:{port}", f"localhost:{port}"):
            async with http.get(f"{url}/panels.json", headers={"Host": own}) as resp:
                assert resp.status == 200, own
    finally:
        await server.close()

"""The one Prometheus client: answers come back as result lists, and a refused query or an
unreachable Prometheus is one LabError naming the query, blocking or async alike."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chaos.errors import LabError
from chaos.lab.ports import free_ports
from chaos.promql import query, query_async, query_range, scalar

SERIES = [{"metric": {"client": "web"}, "value": [1700000000.0, "0.25"]}]


async def fake_prometheus(request: web.Request) -> web.Response:
    """Prometheus's answers: a 400 with its reason for a query it cannot parse, else a result."""
    promql = request.query.get("query", "")
    if promql == "sum(":
        return web.json_response({"status": "error", "errorType": "bad_data", "error": "unexpected end"}, status=400)
    if promql == "absent_thing":
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})
    if promql == "nan":
        series = [{"metric": {}, "value": [1700000000.0, "NaN"]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": series}})
    return web.json_response({"status": "success", "data": {"resultType": "vector", "result": SERIES}})


@pytest.fixture
async def prometheus():
    app = web.Application()
    app.router.add_get("/api/v1/query", fake_prometheus)
    app.router.add_get("/api/v1/query_range", fake_prometheus)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_query_returns_its_result_list_blocking_and_async(prometheus):
    assert await asyncio.to_thread(query, prometheus, "up") == SERIES
    assert await asyncio.to_thread(query_range, prometheus, "up", 1.0, 2.0, 1.0) == SERIES
    assert await asyncio.to_thread(scalar, prometheus, "up") == 0.25
    assert await asyncio.to_thread(scalar, prometheus, "absent_thing") is None
    assert await asyncio.to_thread(scalar, prometheus, "nan") is None
    async with aiohttp.ClientSession() as session:
        assert await query_async(session, prometheus, "up") == SERIES


async def test_a_refused_query_is_one_lab_error_with_prometheus_reason(prometheus):
    with pytest.raises(LabError, match=r"^Prometheus refused 'sum\(': unexpected end$"):
        await asyncio.to_thread(query, prometheus, "sum(")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(LabError, match=r"^Prometheus refused 'sum\(': unexpected end$"):
            await query_async(session, prometheus, "sum(")


async def test_an_unreachable_prometheus_is_one_lab_error_naming_the_query():
    (port,) = free_ports(1)
    nowhere = f"http://127.0.0.1:{port}"
    with pytest.raises(LabError, match=r"^Prometheus query failed \(up\): "):
        await asyncio.to_thread(query, nowhere, "up", timeout_s=2)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(LabError, match=r"^Prometheus query failed \(up\): "):
            await query_async(session, nowhere, "up")

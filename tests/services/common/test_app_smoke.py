"""The skeleton answers bad input with 4xx JSON, never 500; the control plane needs its token."""

from __future__ import annotations

import io
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.architecture.model import ArchitectureState
from services.common.app import DEFAULT_LEASE_S, ServiceContext, create_service_app, route_labels
from tests.conftest import TOKEN, metric_value


async def test_bad_json_is_400(start_service, http):
    auth = await start_service("auth")
    async with http.post(f"{auth.url}/internal/login", data=b"{not json") as resp:
        assert resp.status == 400
        body = await resp.json()
    assert "not valid JSON" in body["errors"][0]["message"]


async def test_huge_body_is_413(start_service, http):
    auth = await start_service("auth")
    async with http.post(f"{auth.url}/internal/login", data=io.BytesIO(b"x" * (2 * 1024 * 1024))) as resp:
        assert resp.status == 413


async def test_unknown_route_is_404_json_and_labelled_unmatched(start_service, http):
    svc = await start_service("notifications")
    async with http.get(f"{svc.url}/no/such/thing") as resp:
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["message"]
    assert metric_value(svc.app, "failwhale_http_requests_total", route="unmatched", code="404") == 1


async def test_control_without_token_is_401_and_changes_nothing(start_service, http, arch_data):
    svc = await start_service("api-1")
    arch_data["version"] = "v2"
    async with http.put(f"{svc.url}/control/architecture", json={"architecture": arch_data}) as resp:
        assert resp.status == 401
    assert svc.ctx.arch.version == "v1"


async def test_control_swaps_architecture_and_deploy_info(start_service, http, arch_data):
    svc = await start_service("api-1")
    arch_data["version"] = "v2"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.put(f"{svc.url}/control/architecture", json={"architecture": arch_data}, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body.pop("lease_expires_in_s") == pytest.approx(DEFAULT_LEASE_S, abs=1)  # a lease, by default
    assert body == {"version": "v2", "previous": "v1"}
    assert metric_value(svc.app, "failwhale_deploy_info", version="v2") == 1
    assert metric_value(svc.app, "failwhale_deploy_info", version="v1") == 0


async def test_invalid_architecture_is_refused_whole(start_service, http, arch_data):
    svc = await start_service("api-1")
    arch_data["version"] = "v2"
    arch_data["api"]["routes"][0]["upstream"] = "nowhere"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.put(f"{svc.url}/control/architecture", json={"architecture": arch_data}, headers=headers) as resp:
        assert resp.status == 400
        message = (await resp.json())["errors"][0]["message"]
    assert "unknown upstream 'nowhere'" in message
    assert svc.ctx.arch.version == "v1"
    json.dumps(message)  # one line, serialisable
    assert "\n" not in message


async def test_an_answer_whose_caller_hung_up_is_counted_499(start_service, http):
    import asyncio

    import aiohttp

    svc = await start_service("timeline")
    fault = {"kind": "latency", "latency_ms": 600, "path_prefix": "/internal/trends", "ttl_s": 5}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.post(f"{svc.url}/control/faults", json={"faults": [fault]}, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
    try:
        async with http.get(f"{svc.url}/internal/trends", timeout=aiohttp.ClientTimeout(total=0.15)):
            raise AssertionError("the slow answer should not arrive in time")
    except TimeoutError:
        pass  # the caller gives up; the service finishes the work anyway
    for _ in range(40):
        await asyncio.sleep(0.05)
        if metric_value(svc.app, "failwhale_http_requests_total", route="/internal/trends", code="499"):
            break
    assert metric_value(svc.app, "failwhale_http_requests_total", route="/internal/trends", code="499") == 1
    assert not metric_value(svc.app, "failwhale_http_requests_total", route="/internal/trends", code="200")


def test_an_expected_connection_drop_is_logged_as_one_line_and_a_bug_keeps_its_traceback():
    import logging
    import sys

    from services.common.app import OneLineAborts

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            return logging.LogRecord(
                "aiohttp.server",
                logging.ERROR,
                __file__,
                1,
                "Error handling request from %s",
                ("127.0.0.1",),
                sys.exc_info(),
            )

    handler = logging.StreamHandler()
    handler.addFilter(OneLineAborts())
    dropped = record(ConnectionResetError("fault: blackhole"))
    assert handler.filter(dropped)
    assert handler.format(dropped) == "Error handling request from 127.0.0.1: ConnectionResetError: fault: blackhole"
    bug = record(KeyError("oops"))
    handler.filter(bug)
    assert "Traceback" in handler.format(bug)


async def test_a_route_name_given_by_a_handler_stays_with_its_request(start_service, http):
    # The edge names its proxied requests "api"; the next request on the same kept-alive
    # connection is the skeleton's /healthz and must be labelled as such.
    edge = await start_service("edge")
    for path in ("/1.1/trends", "/healthz", "/1.1/trends", "/healthz"):
        async with http.get(f"{edge.url}{path}") as resp:
            await resp.read()
    assert metric_value(edge.app, "failwhale_http_requests_total", route="api") == 2
    assert metric_value(edge.app, "failwhale_http_requests_total", route="/healthz", code="200") == 2


async def test_each_route_is_labelled_by_its_own_path_even_when_two_share_a_handler(lab_config, arch, http):
    # The metrics look a label up by handler; a handler on two routes must not lend one route's
    # label to the other.
    async def shared(request: web.Request) -> web.Response:
        return web.json_response({})

    async def alone(request: web.Request) -> web.Response:
        return web.json_response({})

    ctx = ServiceContext("notifications", "notifications", lab_config, ArchitectureState(arch))
    app = create_service_app(ctx, [web.get("/a", shared), web.get("/b/{id}", shared), web.get("/c", alone)])
    server = TestServer(app, host=lab_config.host, port=lab_config.port("notifications"))
    await server.start_server()
    try:
        for path in ("/a", "/b/7", "/b/8", "/c", "/healthz"):
            async with http.get(str(server.make_url(path))) as resp:
                assert resp.status == 200
    finally:
        await server.close()
    counted = {
        route: metric_value(app, "failwhale_http_requests_total", route=route)
        for route in ("/a", "/b/{id}", "/c", "/healthz")
    }
    assert counted == {"/a": 1, "/b/{id}": 2, "/c": 1, "/healthz": 1}


def test_route_labels_leave_shared_handlers_and_the_catch_all_to_the_route_name_function():
    async def shared(request: web.Request) -> web.Response:
        raise AssertionError("not served here")

    async def alone(request: web.Request) -> web.Response:
        raise AssertionError("not served here")

    async def catch_all(request: web.Request) -> web.Response:
        raise AssertionError("not served here")

    app = web.Application()
    app.router.add_routes([web.get("/a", shared), web.post("/b", shared), web.get("/c/{n}", alone)])
    app.router.add_route("*", "/{tail:.*}", catch_all)
    assert route_labels(app.router, catch_all) == {alone: "/c/{n}"}

"""The web frontend over HTTP: the page with its embedded manifest, /pages.json, the static
files, and the same-origin /api/ path through a real edge to a real API replica."""

from __future__ import annotations

import html
import json
import re

import pytest
import yaml

from services.architecture import parse_architecture
from tests.conftest import ROOT, metric_value

PAGES_YAML = ROOT / "services" / "web" / "pages.yaml"
STATIC = ROOT / "services" / "web" / "static"


def pages() -> dict:
    return yaml.safe_load(PAGES_YAML.read_text(encoding="utf-8"))


def assert_is_pages_yaml(served) -> None:
    """``served`` says what pages.yaml says: every value in the file, as written, plus only
    the defaults the manifest model fills in (e.g. an empty ``query``)."""
    from services.web.pages import Manifest

    def contains(got, want, where="") -> None:
        if isinstance(want, dict):
            assert isinstance(got, dict), where
            for k, v in want.items():
                assert k in got, f"{where}.{k} missing"
                contains(got[k], v, f"{where}.{k}")
        elif isinstance(want, list):
            assert isinstance(got, list) and len(got) == len(want), where
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                contains(g, w, f"{where}[{i}]")
        else:
            assert got == want, where

    contains(served, pages())
    assert served == Manifest.model_validate(pages()).model_dump(mode="json")


async def test_index_embeds_the_manifest_and_error_message(start_service, http):
    web = await start_service("web")
    async with http.get(f"{web.url}/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
    m = re.search(r'<script type="application/json" id="page-manifest">(.*?)</script>', page, re.S)
    assert m is not None
    assert_is_pages_yaml(json.loads(m[1]))
    error_message = pages()["error_message"]
    assert html.escape(error_message) in page
    assert "{{" not in page  # every placeholder was filled


async def test_pages_json_equals_pages_yaml(start_service, http):
    web = await start_service("web")
    async with http.get(f"{web.url}/pages.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert_is_pages_yaml(await resp.json())


@pytest.mark.parametrize(
    ("name", "types"), [("app.js", {"application/javascript", "text/javascript"}), ("app.css", {"text/css"})]
)
async def test_static_file_is_served_if_present(start_service, http, name, types):
    path = STATIC / name
    if not path.is_file():
        pytest.skip(f"{path} is not written yet")
    web = await start_service("web")
    async with http.get(f"{web.url}/static/{name}") as resp:
        assert resp.status == 200
        assert resp.content_type in types
        assert await resp.read() == path.read_bytes()


async def test_missing_static_file_is_404(start_service, http):
    web = await start_service("web")
    async with http.get(f"{web.url}/static/no-such-file.js") as resp:
        assert resp.status == 404


async def start_chain(start_service, arch_data, backends=("auth", "notifications")):
    """web -> edge -> api-1 -> backends, all on one architecture with a single API replica."""
    arch_data["api"]["instances"] = ["api-1"]
    a = parse_architecture(arch_data)
    return {name: await start_service(name, architecture=a) for name in (*backends, "api-1", "edge", "web")}


async def test_api_calls_are_proxied_to_the_edge(start_service, http, arch_data):
    lab = await start_chain(start_service, arch_data)
    web = lab["web"]
    guest = pages()["pages"]["home"]["session"]["guest"]
    async with http.request(guest["method"], f"{web.url}{guest['path']}") as resp:
        assert resp.status == 200
        token = (await resp.json())["guest_token"]
    async with http.get(
        f"{web.url}/api/1.1/notifications.json", params={"count": "5"}, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["notifications"] == []
    # (The status page's health checks of /readyz are requests too: count the API's only.)
    assert metric_value(lab["edge"].app, "failwhale_http_requests_total", route="api", code="200") == 2
    api_calls = [("guest_activate", "POST"), ("notifications", "GET")]
    for route, method in api_calls:
        assert (
            metric_value(lab["api-1"].app, "failwhale_http_requests_total", route=route, method=method, code="200") == 1
        )
    assert metric_value(web.app, "failwhale_http_requests_total", route="api_proxy", code="200") == 2


async def test_api_errors_come_back_unchanged(start_service, http, arch_data):
    lab = await start_chain(start_service, arch_data)
    web, api = lab["web"], lab["api-1"]
    for path in ("/api/1.1/timeline/home.json", "/api/1.1/nothing.json"):
        async with http.get(f"{web.url}{path}") as via_web, http.get(f"{api.url}{path}") as direct:
            assert via_web.status == direct.status
            assert via_web.status >= 400
            assert await via_web.json() == await direct.json()


async def test_edge_down_is_502_json(start_service, http):
    web = await start_service("web")
    async with http.get(f"{web.url}/api/1.1/trends.json") as resp:
        assert resp.status == 502
        assert resp.content_type == "application/json"
        assert "edge" in (await resp.json())["errors"][0]["message"]


def test_manifest_text_cannot_break_out_of_the_page():
    """A manifest string holding markup stays data: it neither ends the script tag nor renders."""
    from services.web.app import render_index
    from services.web.pages import Manifest

    data = pages()
    evil = "</script><script>alert(1)</script> & <b>bold</b>"
    data["error_message"] = evil
    data["pages"]["home"]["title"] = evil
    page = render_index(Manifest.model_validate(data)).decode("utf-8")
    assert "alert(1)</script>" not in page
    assert "<b>bold</b>" not in page
    m = re.search(r'<script type="application/json" id="page-manifest">(.*?)</script>', page, re.S)
    assert m is not None
    assert json.loads(m[1])["pages"]["home"]["title"] == evil
    assert html.escape(evil) in page

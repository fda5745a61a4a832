"""The whole lab with a real Prometheus: web and app traffic are recorded apart, by client label."""

from __future__ import annotations

import time

import aiohttp
import pytest

from chaos import measure
from chaos.scenario import CATALOG, load_scenario
from tests.integration.conftest import prom_query, wait_for_query

pytestmark = pytest.mark.integration

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0 Safari/537.36"
APP_UA = "TwitterAndroid/9.70.0-release.0 (29700000-r-0) Pixel 7/13"


async def replay_home_page(session: aiohttp.ClientSession, web_url: str) -> list[int]:
    """Do what the page's JavaScript does for a logged-out visitor, from the page's own manifest."""
    headers = {"User-Agent": BROWSER_UA, "X-Client": "web"}
    async with session.get(f"{web_url}/pages.json", headers=headers) as resp:
        manifest = await resp.json()
    page = manifest["pages"]["home"]
    step = page["session"]["guest"]
    async with session.request(step["method"], web_url + step["path"], headers=headers) as resp:
        assert resp.status == 200
        token = (await resp.json())["guest_token"]
    statuses = []
    for call in page["calls"]:
        async with session.request(
            call["method"],
            web_url + call["path"],
            params=call["query"],
            headers={**headers, "Authorization": f"Bearer {token}"},
        ) as resp:
            statuses.append(resp.status)
    return statuses


async def app_login(session: aiohttp.ClientSession, api_url: str) -> str:
    """Log in as the app does; the session token."""
    headers = {"User-Agent": APP_UA, "X-Client": "app"}
    async with session.post(
        f"{api_url}/api/1.1/auth/login.json", json={"username": "user0042", "password": "failwhale"}, headers=headers
    ) as resp:
        assert resp.status == 200
        return (await resp.json())["token"]


async def app_refresh_timeline(session: aiohttp.ClientSession, api_url: str) -> int:
    headers = {"User-Agent": APP_UA, "X-Client": "app"}
    token = await app_login(session, api_url)
    async with session.get(
        f"{api_url}/api/1.1/timeline/home.json", headers={**headers, "Authorization": f"Bearer {token}"}
    ) as resp:
        assert (await resp.json())["tweets"], "the app's timeline should show the seeded tweets"
        return resp.status


async def test_prometheus_splits_web_and_app_traffic(lab):
    async with aiohttp.ClientSession() as session:
        web_statuses = await replay_home_page(session, lab.url("web"))
        app_status = await app_refresh_timeline(session, lab.url("edge"))
    assert web_statuses == [200, 200, 200, 200]
    assert app_status == 200

    promql = 'sum by (client) (failwhale_http_requests_total{service="api"})'

    def counts(result: list[dict]) -> dict[str, float]:
        return {s["metric"]["client"]: float(s["value"][1]) for s in result}

    # The page made 5 API calls (token + 4); the app made 2 (login + timeline). Replicas are
    # scraped one by one, so wait until every scrape after the traffic has landed.
    result = wait_for_query(lab, promql, lambda r: counts(r).get("web", 0) >= 5 and counts(r).get("app", 0) >= 2)
    by_client = counts(result)
    assert by_client.get("web", 0) >= 5, by_client
    assert by_client.get("app", 0) >= 2, by_client

    # The web service itself saw the page's calls as web traffic on its /api/ proxy. It is a
    # separate scrape target, so its samples may land a scrape later than the API's.
    web_proxy = wait_for_query(
        lab,
        'sum(failwhale_http_requests_total{service="web", route="api_proxy", client="web"})',
        lambda r: bool(r) and float(r[0]["value"][1]) >= 5,
    )
    assert web_proxy and float(web_proxy[0]["value"][1]) >= 5, web_proxy


async def test_prometheus_scrapes_every_process_and_sees_versions(lab):
    up = wait_for_query(lab, "up == 1", lambda r: len(r) == 10)
    assert sorted(s["metric"]["job"] for s in up).count("api") == 4
    assert len(up) == 10, [s["metric"] for s in up]
    versions = prom_query(lab, "count by (version) (failwhale_deploy_info)")
    assert {s["metric"]["version"]: s["value"][1] for s in versions} == {"v1": "10"}
    ready = prom_query(lab, "min(failwhale_service_ready)")
    assert ready[0]["value"][1] == "1"


async def app_post(session: aiohttp.ClientSession, api_url: str, token: str, text: str) -> int:
    headers = {"User-Agent": APP_UA, "X-Client": "app", "Authorization": f"Bearer {token}"}
    async with session.post(f"{api_url}/api/1.1/statuses/update.json", json={"text": text}, headers=headers) as resp:
        return resp.status


async def test_a_scenario_expectation_counts_every_failed_post_of_its_phase(lab):
    """The headline's "posting tweets fails" counts each post of the phase, also the failures
    whose status code a replica answers for the first time inside it (a new series)."""
    scenario = load_scenario(CATALOG / "twitter-2022-12-28.yaml")
    posting = next(e for e in scenario.expectations if e.name == "posting tweets fails")
    posts = 'sum(failwhale_http_requests_total{service="api",route="post_tweet"})'

    def posted(n: int):
        return lambda r: bool(r) and float(r[0]["value"][1]) >= n

    async with aiohttp.ClientSession() as session:
        token = await app_login(session, lab.url("edge"))
        assert await app_post(session, lab.url("edge"), token, "before the phase") == 201
        wait_for_query(lab, posts, posted(1))
        start = time.time()
        # Two too-long tweets: 400s, a status code no replica has answered a post with yet.
        codes = [await app_post(session, lab.url("edge"), token, text) for text in ("one", "x" * 281, "two", "y" * 281)]
    assert codes == [201, 400, 201, 400]
    wait_for_query(lab, posts, posted(5))
    end = time.time()

    assert measure.phase_scalar(lab.url("prometheus"), posting.promql, start, end) == pytest.approx(0.5)

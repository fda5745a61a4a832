"""The status page reads only health checks: operational when every process is ready, else it
names what is down, and it never looks at what users experience."""

from __future__ import annotations

import asyncio

from services.web.status import CHECK_EVERY_S


async def status(http, url: str) -> dict:
    async with http.get(f"{url}/status.json") as resp:
        assert resp.status == 200
        return await resp.json()


async def test_status_names_what_is_down_then_turns_operational_when_all_are_ready(start_service, http, arch):
    web = await start_service("web")
    await start_service("auth")
    await asyncio.sleep(CHECK_EVERY_S * 1.5)
    got = await status(http, web.url)
    assert got["status"] == "degraded"
    assert got["components"]["auth"] == "operational" and got["components"]["timeline"] == "down"
    assert "timeline" in got["description"]

    for name in arch.instance_kinds():
        if name not in ("web", "auth"):
            await start_service(name)
    await asyncio.sleep(CHECK_EVERY_S * 1.5)
    got = await status(http, web.url)
    assert got == {**got, "status": "operational", "description": "All systems operational"}
    async with http.get(f"{web.url}/status") as resp:
        page = await resp.text()
    assert "All systems operational" in page and resp.content_type == "text/html"


async def test_status_stays_operational_while_every_api_call_fails(start_service, http, arch):
    """Users can be failing on every call while the page is green: it only asks /readyz."""
    from tests.conftest import TOKEN

    running = {name: await start_service(name) for name in arch.instance_kinds()}
    fault = {"kind": "error", "status": 503, "path_prefix": "/internal/", "ttl_s": 10}
    async with http.post(
        f"{running['timeline'].url}/control/faults",
        json={"faults": [fault]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        assert resp.status == 201
    async with http.get(f"{running['timeline'].url}/internal/trends") as resp:
        assert resp.status == 503  # every build fails for users
    await asyncio.sleep(CHECK_EVERY_S * 1.5)
    assert (await status(http, running["web"].url))["status"] == "operational"


async def test_a_posted_update_shows_until_one_says_resolved(start_service, http, arch):
    """Only people can tell users what health checks miss: the update replaces "operational"."""
    from tests.conftest import TOKEN

    running = {name: await start_service(name) for name in arch.instance_kinds()}
    web = running["web"]
    control = {"Authorization": f"Bearer {TOKEN}"}
    await asyncio.sleep(CHECK_EVERY_S * 1.5)
    assert (await status(http, web.url))["status"] == "operational"

    async with http.post(
        f"{web.url}/control/status", json={"state": "investigating", "text": "Logins <fail> on the website"}
    ) as resp:
        assert resp.status == 401  # the control plane's token is needed
    async with http.post(f"{web.url}/control/status", json={"state": "fixed", "text": "x"}, headers=control) as resp:
        assert resp.status == 400 and "investigating" in (await resp.json())["errors"][0]["message"]
    assert (await status(http, web.url))["status"] == "operational"  # nothing half-posted

    async with http.post(
        f"{web.url}/control/status",
        json={"state": "investigating", "text": "Logins <fail> on the website"},
        headers=control,
    ) as resp:
        assert resp.status == 200
    got = await status(http, web.url)
    assert (got["status"], got["description"]) == ("incident", "Investigating: Logins <fail> on the website")
    async with http.get(f"{web.url}/status") as resp:
        page = await resp.text()
    assert "Logins &lt;fail&gt; on the website" in page and "<fail>" not in page

    async with http.post(
        f"{web.url}/control/status", json={"state": "resolved", "text": "Logins work again"}, headers=control
    ) as resp:
        assert resp.status == 200
    got = await status(http, web.url)
    assert got["status"] == "operational"
    assert [u["state"] for u in got["updates"]] == ["resolved", "investigating"]  # newest first

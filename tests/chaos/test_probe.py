"""The "works for me" probe against real services in-process: a logged-in app user with a warm
cache keeps seeing a timeline while a fresh web visit fails, because of how each client works."""

from __future__ import annotations

import asyncio

from chaos.probe import AppUser, describe, fresh_web_visit
from chaos.records import AppUserView, WebVisit
from tests.conftest import TOKEN


async def whole_lab(start_service, arch) -> dict:
    return {name: await start_service(name) for name in arch.instance_kinds()}


async def warm_user_then_break(start_service, arch, http, target: str, fault: dict) -> tuple[dict, AppUser]:
    """A whole lab, an app user signed in with a warm cache, then ``fault`` on ``target``."""
    lab = await whole_lab(start_service, arch)
    user = AppUser(lab["edge"].url)
    assert await asyncio.to_thread(user.warm)
    async with http.post(
        f"{lab[target].url}/control/faults", json={"faults": [fault]}, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 201
    return lab, user


async def test_both_views_work_on_a_healthy_lab(start_service, arch):
    lab = await whole_lab(start_service, arch)
    user = AppUser(lab["edge"].url)
    assert await asyncio.to_thread(user.warm)
    assert await asyncio.to_thread(user.look) == AppUserView(sees="timeline", fresh=True)
    assert await asyncio.to_thread(fresh_web_visit, lab["web"].url) == WebVisit(page="ok")


async def test_works_for_me_while_fresh_web_visits_are_rate_limited(start_service, arch, http):
    # Auth stops handing out tokens and checking them: the same fault for every caller.
    fault = {"kind": "error", "status": 429, "path_prefix": "/internal/", "ttl_s": 20}
    lab, user = await warm_user_then_break(start_service, arch, http, "auth", fault)
    app = await asyncio.to_thread(user.look)
    web = await asyncio.to_thread(fresh_web_visit, lab["web"].url)
    # The app's token was checked before the fault and is still trusted by the replicas.
    assert app.sees == "timeline"
    assert web.page == "failed" and web.failed_call == "guest_token" and (web.error or "").startswith("429")
    assert "fails at guest_token" in describe(app, web)


async def test_a_broken_timeline_shows_the_cached_one_to_the_app_user(start_service, arch, http):
    fault = {"kind": "error", "status": 503, "path_prefix": "/internal/timeline", "ttl_s": 20}
    _, user = await warm_user_then_break(start_service, arch, http, "timeline", fault)
    app = await asyncio.to_thread(user.look)
    assert app.sees == "timeline" and app.fresh is False and (app.refresh_error or "").startswith("503")
    assert "sees its timeline from" in describe(app, WebVisit(page="ok")) and "refresh failed: 503" in describe(
        app, WebVisit(page="ok")
    )

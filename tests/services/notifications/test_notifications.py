"""The notifications backend: empty for guests, a stable per-user feed for users."""

from __future__ import annotations

from services.architecture import parse_architecture


async def feed(http, svc, user=None):
    headers = {"X-User": user} if user is not None else {}
    async with http.get(f"{svc.url}/internal/notifications", headers=headers) as resp:
        assert resp.status == 200
        return await resp.json()


def stable(body):
    """The feed without its timestamps (they are relative to now)."""
    return [{k: v for k, v in n.items() if k != "at"} for n in body["notifications"]]


async def test_guest_gets_an_empty_list(start_service, http):
    svc = await start_service("notifications")
    assert await feed(http, svc) == {"user": None, "notifications": []}
    assert await feed(http, svc, "guest") == {"user": None, "notifications": []}


async def test_user_gets_the_same_non_empty_feed_twice(start_service, http):
    svc = await start_service("notifications")
    first = await feed(http, svc, "user0001")
    second = await feed(http, svc, "user0001")
    assert first["user"] == "user0001"
    assert first["notifications"]
    assert stable(first) == stable(second)
    kinds = {"like", "follow", "retweet", "mention"}
    assert {n["kind"] for n in first["notifications"]} <= kinds
    assert len({n["id"] for n in first["notifications"]}) == len(first["notifications"])


async def test_feeds_differ_between_users_and_survive_a_restart(start_service, http):
    svc = await start_service("notifications")
    users = [f"user{i:04d}" for i in range(1, 6)]
    before = {u: stable(await feed(http, svc, u)) for u in users}
    assert len({str(f) for f in before.values()}) == len(users)
    await svc.server.close()
    again = await start_service("notifications")
    assert {u: stable(await feed(http, again, u)) for u in users} == before


async def test_newest_first_and_within_page_size(start_service, http, arch_data):
    arch_data["backends"]["notifications"]["page_size"] = 3
    svc = await start_service("notifications", architecture=parse_architecture(arch_data))
    for i in range(1, 30):
        items = (await feed(http, svc, f"user{i:04d}"))["notifications"]
        assert 1 <= len(items) <= 3
        times = [n["at"] for n in items]
        assert times == sorted(times, reverse=True)

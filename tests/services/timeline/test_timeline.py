"""The timeline backend over real HTTP, reading from a real tweets service: content, cache,
the capacity gate (and resizing it live), and a missing tweets service."""

from __future__ import annotations

import asyncio

from services.architecture import parse_architecture
from services.timeline.app import CACHE as CACHE_KEY
from services.tweets.store import SEED_TWEETS
from tests.conftest import TOKEN, metric_value

CONTROL = {"Authorization": f"Bearer {TOKEN}"}


def tight(arch_data, *, capacity=1):
    tl = arch_data["backends"]["timeline"]
    tl.update(capacity=capacity, queue_timeout_s=0.05, build_ms=300, cache_ttl_s=0)
    return parse_architecture(arch_data)


async def get(http, url, **kw):
    async with http.get(url, **kw) as resp:
        return resp.status, await resp.json()


async def test_home_serves_the_tweets_service_newest_first(start_service, http):
    tweets = await start_service("tweets")
    timeline = await start_service("timeline")
    status, body = await get(http, f"{timeline.url}/internal/timeline/home", headers={"X-User": "user0009"})
    assert status == 200
    assert body["user"] == "user0009"
    page_size = timeline.ctx.arch.backend("timeline").page_size
    _, recent = await get(http, f"{tweets.url}/internal/tweets/recent", params={"limit": str(page_size)})
    assert body["tweets"] == recent
    assert [t["text"] for t in body["tweets"]] == [text for _, text in reversed(SEED_TWEETS)][:page_size]


async def test_home_shows_a_new_tweet_once_the_cache_expires(start_service, http, arch_data):
    arch_data["backends"]["timeline"]["cache_ttl_s"] = 0
    a = parse_architecture(arch_data)
    tweets = await start_service("tweets", architecture=a)
    timeline = await start_service("timeline", architecture=a)
    async with http.post(
        f"{tweets.url}/internal/tweets", json={"text": "fresh off the press"}, headers={"X-User": "user0002"}
    ) as resp:
        assert resp.status == 201
        posted = await resp.json()
    _, body = await get(http, f"{timeline.url}/internal/timeline/home")
    assert body["tweets"][0] == posted


async def test_page_size_limits_the_timeline(start_service, http, arch_data):
    arch_data["backends"]["timeline"]["page_size"] = 2
    a = parse_architecture(arch_data)
    await start_service("tweets", architecture=a)
    timeline = await start_service("timeline", architecture=a)
    _, body = await get(http, f"{timeline.url}/internal/timeline/home")
    assert len(body["tweets"]) == 2


async def test_second_request_within_ttl_is_a_cache_hit(start_service, http):
    await start_service("tweets")
    timeline = await start_service("timeline")
    url = f"{timeline.url}/internal/timeline/home"
    _, first = await get(http, url)
    _, second = await get(http, url)
    assert second == first  # same page, same built_at
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="miss") == 1
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="hit") == 1
    # Another user's timeline is cached separately.
    _, other = await get(http, url, headers={"X-User": "user0001"})
    assert other["user"] == "user0001"
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="miss") == 2


async def test_cache_expires_after_ttl(start_service, http, arch_data):
    arch_data["backends"]["timeline"]["cache_ttl_s"] = 0.05
    a = parse_architecture(arch_data)
    await start_service("tweets", architecture=a)
    timeline = await start_service("timeline", architecture=a)
    url = f"{timeline.url}/internal/timeline/home"
    _, first = await get(http, url)
    await asyncio.sleep(0.06)
    _, second = await get(http, url)
    assert second["built_at"] > first["built_at"]
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="miss") == 2
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="hit") == 0


async def test_trends_count_hashtags_from_the_tweets(start_service, http):
    await start_service("tweets")
    timeline = await start_service("timeline")
    status, body = await get(http, f"{timeline.url}/internal/trends")
    assert status == 200
    counts: dict[str, int] = {}
    for _, text in SEED_TWEETS:
        for word in text.split():
            if word.startswith("#"):
                counts[word.lower()] = counts.get(word.lower(), 0) + 1
    assert {t["name"]: t["tweet_volume"] for t in body["trends"]} == counts
    volumes = [t["tweet_volume"] for t in body["trends"]]
    assert volumes == sorted(volumes, reverse=True)


async def test_over_capacity_build_gets_503(start_service, http, arch_data):
    a = tight(arch_data, capacity=1)
    await start_service("tweets", architecture=a)
    timeline = await start_service("timeline", architecture=a)
    url = f"{timeline.url}/internal/timeline/home"
    results = await asyncio.gather(get(http, url), get(http, url, headers={"X-User": "user0001"}))
    assert sorted(status for status, _ in results) == [200, 503]
    rejected = next(body for status, body in results if status == 503)
    assert "Over capacity" in rejected["errors"][0]["message"]
    assert metric_value(timeline.app, "failwhale_timeline_rejected_total") == 1
    assert metric_value(timeline.app, "failwhale_timeline_builds_in_progress") == 0


async def test_queued_build_gets_a_slot_that_frees_in_time(start_service, http, arch_data):
    arch_data["backends"]["timeline"].update(capacity=1, queue_timeout_s=0.5, build_ms=50, cache_ttl_s=0)
    a = parse_architecture(arch_data)
    await start_service("tweets", architecture=a)
    timeline = await start_service("timeline", architecture=a)
    url = f"{timeline.url}/internal/timeline/home"
    results = await asyncio.gather(get(http, url), get(http, url))
    assert [status for status, _ in results] == [200, 200]


async def test_capacity_resize_by_architecture_swap(start_service, http, arch_data):
    a = tight(arch_data, capacity=1)
    await start_service("tweets", architecture=a)
    timeline = await start_service("timeline", architecture=a)
    bigger = tight(arch_data, capacity=2)
    async with http.put(
        f"{timeline.url}/control/architecture", json={"architecture": bigger.model_dump(mode="json")}, headers=CONTROL
    ) as resp:
        assert resp.status == 200, await resp.text()
    url = f"{timeline.url}/internal/timeline/home"
    results = await asyncio.gather(get(http, url), get(http, url))
    assert [status for status, _ in results] == [200, 200]
    assert metric_value(timeline.app, "failwhale_timeline_rejected_total") == 0


async def test_tweets_down_is_502_json(start_service, http):
    timeline = await start_service("timeline")  # tweets is not started
    paths = ("/internal/timeline/home", "/internal/timeline/home", "/internal/trends")
    for path in paths:
        async with http.get(f"{timeline.url}{path}") as resp:
            assert resp.status == 502
            assert resp.content_type == "application/json"
            assert "tweets is unreachable" in (await resp.json())["errors"][0]["message"]
    assert metric_value(
        timeline.app, "failwhale_upstream_requests_total", upstream="tweets", outcome="connection_error"
    ) == len(paths)
    # A failed build leaves nothing behind: no slot held, nothing cached.
    assert metric_value(timeline.app, "failwhale_timeline_builds_in_progress") == 0
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="hit") == 0


async def test_count_limits_the_page_and_bad_counts_are_400(start_service, http):
    await start_service("tweets")
    timeline = await start_service("timeline")
    async with http.get(f"{timeline.url}/internal/timeline/home", params={"count": "2"}) as resp:
        assert resp.status == 200
        assert len((await resp.json())["tweets"]) == 2
    for bad in ("0", "201", "x", "²"):
        async with http.get(f"{timeline.url}/internal/timeline/home", params={"count": bad}) as resp:
            assert resp.status == 400, bad


async def test_flush_empties_the_cache_and_warm_builds_it_again(start_service, http, arch_data):
    """An operator's cache levers: a flush makes the next read a miss; a warm-up makes it a hit."""
    arch_data["backends"]["timeline"]["cache_ttl_s"] = 30
    await start_service("tweets")
    timeline = await start_service("timeline", architecture=parse_architecture(arch_data))
    url = f"{timeline.url}/internal/timeline/home"
    for user in ("user0001", "user0002"):
        await get(http, url, headers={"X-User": user})
    async with http.post(f"{timeline.url}/control/caches/flush") as resp:
        assert resp.status == 401
    async with http.post(f"{timeline.url}/control/caches/flush", headers=CONTROL) as resp:
        assert (resp.status, (await resp.json())["caches"]) == (200, {"timelines": 2})
    await get(http, url, headers={"X-User": "user0001"})
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="miss") == 3

    async with http.post(f"{timeline.url}/control/caches/flush", headers=CONTROL) as resp:
        assert resp.status == 200
    async with http.post(f"{timeline.url}/control/caches/warm", headers=CONTROL) as resp:
        assert (await resp.json())["caches"] == {"timelines": 0}  # nothing was cached: nothing to warm
    await get(http, url, headers={"X-User": "user0002"})
    timeline.app[CACHE_KEY]["home:user0002:20"] = (0.0, [], 0.0)  # expired: a warm-up builds it again
    async with http.post(f"{timeline.url}/control/caches/warm", headers=CONTROL) as resp:
        assert (await resp.json())["caches"] == {"timelines": 1}
    hits = metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="hit")
    status, body = await get(http, url, headers={"X-User": "user0002"})
    assert status == 200 and body["tweets"]
    assert metric_value(timeline.app, "failwhale_timeline_cache_requests_total", result="hit") == hits + 1
    async with http.post(f"{timeline.url}/control/caches/melt", headers=CONTROL) as resp:
        assert resp.status == 404

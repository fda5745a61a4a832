"""Timeline backend app: home timelines and trends.

A cache hit is cheap and needs no capacity. A miss builds the timeline: it takes a slot of
the capacity gate (waiting up to ``queue_timeout_s``, then 503 "Over capacity"), reads recent
tweets from the tweets backend and spends ``build_ms`` assembling the page.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter as Tally
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge

from services.architecture.model import TimelineBackend
from services.common.app import (
    CACHES,
    CONTEXT,
    METRICS,
    UPSTREAM,
    CacheOps,
    ServiceContext,
    create_service_app,
    whole_number,
)
from services.common.jsonbody import json_response
from services.errors import BadRequest, OverCapacity, ServiceError, UpstreamError
from services.timeline.capacity import CapacityGate

GATE = web.AppKey("timeline_gate", CapacityGate)
CACHE = web.AppKey("timeline_cache", dict)
TL_METRICS = web.AppKey("timeline_metrics", dict)
HASHTAG = re.compile(r"#(\w+)")
CACHE_MAX_ENTRIES = 50_000


def _config(app: web.Application) -> TimelineBackend:
    ctx = app[CONTEXT]
    return ctx.arch.backend(ctx.instance)


async def _cached(request: web.Request, key: str, build) -> tuple[Any, float]:
    """Serve ``key`` from cache, or build it under the capacity gate. Returns (value, built_at)."""
    return await _lookup(request.app, key, build)


async def _lookup(app: web.Application, key: str, build, force: bool = False) -> tuple[Any, float]:
    cfg = _config(app)
    cache = app[CACHE]
    m = app[TL_METRICS]
    now = time.time()
    hit = cache.get(key)
    if hit is not None and hit[0] > now and not force:
        m["hit"].inc()
        return hit[1], hit[2]
    m["miss"].inc()
    gate = app[GATE]
    if not await gate.acquire(cfg.queue_timeout_s):
        m["rejected"].inc()
        raise OverCapacity("Over capacity: too many timelines are being built")
    m["building"].inc()
    try:
        value = await build(cfg)
    finally:
        m["building"].dec()
        await gate.release()
    built = time.time()
    if len(cache) >= CACHE_MAX_ENTRIES:
        cache.clear()  # crude but bounded; a full cache is rare at lab scale
    cache[key] = (built + cfg.cache_ttl_s, value, built)
    return value, built


async def _recent_tweets(request: web.Request | web.Application, cfg: TimelineBackend, limit: int) -> list[dict]:
    # A warm-up has no request: it calls as nobody's client.
    app, headers = (request.app, request.headers) if isinstance(request, web.Request) else (request, {})
    resp = await app[UPSTREAM].call(
        cfg.tweets,
        "GET",
        "/internal/tweets/recent",
        name="tweets",
        query=f"limit={limit}",
        headers=headers,
    )
    if resp.status != 200:
        raise UpstreamError(f"tweets answered {resp.status}")
    return resp.json()


async def home(request: web.Request) -> web.Response:
    user = request.headers.get("X-User", "guest")
    page_size = _config(request.app).page_size
    raw = request.query.get("count", str(page_size))
    wanted = whole_number(raw)
    if wanted is None or not 1 <= wanted <= 200:
        raise BadRequest("'count' must be a whole number from 1 to 200")
    count = min(wanted, page_size)  # the architecture caps how much one build may fetch

    async def build(cfg: TimelineBackend) -> list[dict]:
        tweets = await _recent_tweets(request, cfg, count)
        await asyncio.sleep(cfg.build_ms / 1000)  # ranking and fan-in, simulated
        return tweets

    tweets, built = await _cached(request, f"home:{user}:{count}", build)
    return json_response({"user": user, "built_at": built, "tweets": tweets})


async def trends(request: web.Request) -> web.Response:
    async def build(cfg: TimelineBackend) -> list[dict]:
        tweets = await _recent_tweets(request, cfg, 100)
        tally = Tally(tag.lower() for t in tweets for tag in HASHTAG.findall(t["text"]))
        return [{"name": f"#{tag}", "tweet_volume": n} for tag, n in tally.most_common(10)]

    items, built = await _cached(request, "trends", build)
    return json_response({"built_at": built, "trends": items})


def _flush(app: web.Application) -> int:
    n = len(app[CACHE])
    app[CACHE].clear()
    return n


async def _warm(app: web.Application) -> int:
    """Build again every timeline the cache holds that is expired or half way there, all at
    once under the same capacity gate as users' requests: warming the cache of an overloaded
    service competes with its users, and builds that find no slot stay cold."""
    now = time.time()
    ttl = _config(app).cache_ttl_s
    keys = [k for k, (expires, _v, _b) in list(app[CACHE].items()) if k != "trends" and expires - now < ttl / 2]

    async def rebuild(key: str) -> bool:
        count = int(key.rsplit(":", 1)[1])

        async def build(cfg: TimelineBackend) -> list[dict]:
            tweets = await _recent_tweets(app, cfg, count)
            await asyncio.sleep(cfg.build_ms / 1000)
            return tweets

        try:
            await _lookup(app, key, build, force=True)  # a failed build leaves the old entry as it was
        except ServiceError:  # over capacity, or tweets failed: that entry stays cold
            return False
        return True

    return sum(await asyncio.gather(*(rebuild(k) for k in keys)))


def create_app(ctx: ServiceContext) -> web.Application:
    routes = [web.get("/internal/timeline/home", home), web.get("/internal/trends", trends)]
    app = create_service_app(ctx, routes)
    cfg: TimelineBackend = ctx.arch.backend(ctx.instance)
    gate = CapacityGate(cfg.capacity)
    app[GATE] = gate
    app[CACHE] = {}
    app[CACHES]["timelines"] = CacheOps(flush=lambda: _flush(app), warm=lambda: _warm(app))

    def on_change(_old, new) -> None:
        gate.resize(new.backend(ctx.instance).capacity)

    ctx.architecture.on_change(on_change)
    m = app[METRICS]
    s, r = m.service, m.replica
    cache_requests = Counter(
        "failwhale_timeline_cache_requests_total",
        "Timeline and trends lookups, by cache result.",
        ["service", "replica", "result"],
        registry=m.registry,
    )
    app[TL_METRICS] = {
        "hit": cache_requests.labels(s, r, "hit"),
        "miss": cache_requests.labels(s, r, "miss"),
        "rejected": Counter(
            "failwhale_timeline_rejected_total",
            "Timeline builds refused with 503 'Over capacity' after waiting for a slot.",
            ["service", "replica"],
            registry=m.registry,
        ).labels(s, r),
        "building": Gauge(
            "failwhale_timeline_builds_in_progress",
            "Timeline builds holding a capacity slot right now.",
            ["service", "replica"],
            registry=m.registry,
        ).labels(s, r),
    }
    return app

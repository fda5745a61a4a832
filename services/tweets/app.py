"""Tweets backend app: post, read recent, read one."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter

from services.common.app import CONTEXT, METRICS, ServiceContext, create_service_app, read_json, whole_number
from services.common.jsonbody import json_response
from services.errors import BadRequest, NotFound, Unauthorized
from services.tweets.store import TweetStore, db_path

STORE = web.AppKey("tweet_store", TweetStore)
STORED = web.AppKey("tweets_stored", Counter)
MAX_ID = 2**63 - 1  # SQLite's largest INTEGER


async def post_tweet(request: web.Request) -> web.Response:
    user = request.headers.get("X-User")
    if not user or user == "guest":
        raise Unauthorized("Posting needs a logged-in user")
    body = await read_json(request)
    text = body.get("text")
    limit = request.app[CONTEXT].arch.backend(request.app[CONTEXT].instance).max_length
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("A tweet needs a non-empty 'text' string")
    if len(text) > limit:
        raise BadRequest(f"A tweet may be at most {limit} characters, this one has {len(text)}")
    tweet = await request.app[STORE].insert(user, text)
    request.app[STORED].inc()
    return json_response(tweet, status=201)


async def recent(request: web.Request) -> web.Response:
    limit = whole_number(request.query.get("limit", "20"))
    if limit is None:
        raise BadRequest("'limit' must be a whole number")
    if not 1 <= limit <= 200:
        raise BadRequest("'limit' must be between 1 and 200")
    return json_response(await request.app[STORE].recent(limit))


async def show(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest("A tweet id is a whole number")
    tweet_id = whole_number(raw)  # None past 19 digits: no tweet has such an id
    tweet = await request.app[STORE].get(tweet_id) if tweet_id is not None and tweet_id <= MAX_ID else None
    if tweet is None:
        raise NotFound(f"No tweet with id {raw[:40]}")
    return json_response(tweet)


async def _store_ctx(app: web.Application):
    await app[STORE].open()
    yield
    await app[STORE].close()


def create_app(ctx: ServiceContext) -> web.Application:
    routes = [
        web.post("/internal/tweets", post_tweet),
        web.get("/internal/tweets/recent", recent),
        web.get("/internal/tweets/{id}", show),
    ]
    app = create_service_app(ctx, routes, cleanup=[_store_ctx])
    app[STORE] = TweetStore(db_path(ctx.lab.data_path, ctx.instance))
    m = app[METRICS]
    app[STORED] = Counter(
        "failwhale_tweets_stored_total",
        "Tweets committed to SQLite (each one was acknowledged to its poster).",
        ["service", "replica"],
        registry=m.registry,
    ).labels(m.service, m.replica)
    return app

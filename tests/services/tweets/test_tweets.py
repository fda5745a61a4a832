"""The tweets backend over real HTTP: posting, reading back, durability in SQLite, and
refusing bad input with 4xx (never 500)."""

from __future__ import annotations

import sqlite3

import pytest

from services.architecture import parse_architecture
from services.tweets.store import SEED_TWEETS, db_path, stored_ids
from tests.conftest import metric_value


async def post_tweet(http, svc, text, user="user0001"):
    headers = {"X-User": user} if user is not None else {}
    async with http.post(f"{svc.url}/internal/tweets", json={"text": text}, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_post_is_201_and_readable_back(start_service, http):
    tweets = await start_service("tweets")
    status, tweet = await post_tweet(http, tweets, "hello from the lab", user="user0077")
    assert status == 201
    assert (tweet["user"], tweet["text"]) == ("user0077", "hello from the lab")
    async with http.get(f"{tweets.url}/internal/tweets/{tweet['id']}") as resp:
        assert resp.status == 200
        assert await resp.json() == tweet
    async with http.get(f"{tweets.url}/internal/tweets/recent", params={"limit": "1"}) as resp:
        assert await resp.json() == [tweet]
    assert metric_value(tweets.app, "failwhale_tweets_stored_total") == 1


async def test_ids_increase_and_recent_is_newest_first(start_service, http):
    tweets = await start_service("tweets")
    posted = [(await post_tweet(http, tweets, f"tweet {i}"))[1] for i in range(3)]
    ids = [t["id"] for t in posted]
    assert ids == sorted(ids) and len(set(ids)) == 3
    async with http.get(f"{tweets.url}/internal/tweets/recent", params={"limit": "3"}) as resp:
        assert await resp.json() == posted[::-1]


async def test_fresh_store_is_seeded(start_service, http):
    tweets = await start_service("tweets")
    async with http.get(f"{tweets.url}/internal/tweets/recent", params={"limit": "200"}) as resp:
        rows = await resp.json()
    assert [(r["user"], r["text"]) for r in reversed(rows)] == SEED_TWEETS


async def test_posted_tweet_is_durable_in_sqlite_wal(start_service, http, lab_config):
    tweets = await start_service("tweets")
    status, tweet = await post_tweet(http, tweets, "this must survive", user="user0123")
    assert status == 201
    await tweets.server.close()  # the app stops; the store closes its connection
    db = sqlite3.connect(db_path(lab_config.data_path, "tweets"))
    try:
        row = db.execute("SELECT user, text FROM tweets WHERE id = ?", (tweet["id"],)).fetchone()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()
    assert row == ("user0123", "this must survive")
    assert mode == "wal"


async def test_stored_ids_reads_what_was_committed_while_the_service_runs(start_service, http, lab_config):
    path = db_path(lab_config.data_path, "tweets")
    assert stored_ids(path) == set() and not path.exists()  # reading creates no database
    tweets = await start_service("tweets")
    ids = [(await post_tweet(http, tweets, f"tweet {i}", user="user0123"))[1]["id"] for i in range(3)]
    stored = stored_ids(path)
    assert set(ids) <= stored
    assert len(stored) == len(SEED_TWEETS) + 3


async def test_tweets_survive_a_restart_without_reseeding(start_service, http):
    first = await start_service("tweets")
    _, tweet = await post_tweet(http, first, "still here after restart")
    await first.server.close()
    second = await start_service("tweets")
    async with http.get(f"{second.url}/internal/tweets/{tweet['id']}") as resp:
        assert await resp.json() == tweet
    async with http.get(f"{second.url}/internal/tweets/recent", params={"limit": "200"}) as resp:
        assert len(await resp.json()) == len(SEED_TWEETS) + 1


@pytest.mark.parametrize("user", [None, "guest", ""])
async def test_posting_needs_a_logged_in_user(start_service, http, user):
    tweets = await start_service("tweets")
    status, body = await post_tweet(http, tweets, "who am I", user=user)
    assert status == 401
    assert "logged-in user" in body["errors"][0]["message"]
    assert metric_value(tweets.app, "failwhale_tweets_stored_total") == 0


@pytest.mark.parametrize("payload", [{"text": ""}, {"text": "   \n\t"}, {}, {"text": 42}, {"text": None}])
async def test_empty_or_missing_text_is_400(start_service, http, payload):
    tweets = await start_service("tweets")
    async with http.post(f"{tweets.url}/internal/tweets", json=payload, headers={"X-User": "user0001"}) as resp:
        assert resp.status == 400
        assert "non-empty 'text'" in (await resp.json())["errors"][0]["message"]


async def test_length_limit_is_inclusive(start_service, http):
    tweets = await start_service("tweets")
    limit = tweets.ctx.arch.backend("tweets").max_length
    assert (await post_tweet(http, tweets, "x" * limit))[0] == 201
    status, body = await post_tweet(http, tweets, "x" * (limit + 1))
    assert status == 400
    assert f"at most {limit} characters, this one has {limit + 1}" in body["errors"][0]["message"]


async def test_length_counts_characters_not_bytes(start_service, http):
    tweets = await start_service("tweets")
    limit = tweets.ctx.arch.backend("tweets").max_length
    status, tweet = await post_tweet(http, tweets, "é" * limit)
    assert status == 201
    assert tweet["text"] == "é" * limit


async def test_max_length_comes_from_the_architecture(start_service, http, arch_data):
    arch_data["backends"]["tweets"]["max_length"] = 5
    tweets = await start_service("tweets", architecture=parse_architecture(arch_data))
    assert (await post_tweet(http, tweets, "12345"))[0] == 201
    assert (await post_tweet(http, tweets, "123456"))[0] == 400


async def test_unknown_id_is_404(start_service, http):
    tweets = await start_service("tweets")
    async with http.get(f"{tweets.url}/internal/tweets/999999") as resp:
        assert resp.status == 404
        assert "999999" in (await resp.json())["errors"][0]["message"]


@pytest.mark.parametrize("raw", ["abc", "1.5", "-1", "0x10"])
async def test_non_numeric_id_is_400(start_service, http, raw):
    tweets = await start_service("tweets")
    async with http.get(f"{tweets.url}/internal/tweets/{raw}") as resp:
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["message"] == "A tweet id is a whole number"


@pytest.mark.parametrize("limit", ["0", "201", "ten"])
async def test_bad_recent_limit_is_400(start_service, http, limit):
    tweets = await start_service("tweets")
    async with http.get(f"{tweets.url}/internal/tweets/recent", params={"limit": limit}) as resp:
        assert resp.status == 400
        assert "'limit'" in (await resp.json())["errors"][0]["message"]


async def test_huge_id_is_not_found_not_500(start_service, http):
    tweets = await start_service("tweets")
    async with http.get(f"{tweets.url}/internal/tweets/{'9' * 30}") as resp:
        assert resp.status in (400, 404)


async def test_non_ascii_digit_id_is_400_not_500(start_service, http):
    tweets = await start_service("tweets")
    async with http.get(f"{tweets.url}/internal/tweets/²") as resp:
        assert resp.status == 400

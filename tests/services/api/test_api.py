"""An API replica (api-1) in front of real auth, timeline, tweets and notifications services:
routing, token checks and their cache, and how backend failures reach the client."""

from __future__ import annotations

import asyncio

from services.architecture import parse_architecture
from services.auth.app import LAB_PASSWORD
from services.tweets.store import SEED_TWEETS
from tests.conftest import TOKEN, metric_value

BACKENDS = ("auth", "timeline", "tweets", "notifications")


async def start_api(start_service, architecture=None, without=()):
    """The backends (less ``without``) then api-1, all on ``architecture``; returns api-1."""
    for name in BACKENDS:
        if name not in without:
            await start_service(name, architecture=architecture)
    return await start_service("api-1", architecture=architecture)


async def call(http, method, url, token=None, **kw):
    headers = kw.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.request(method, url, headers=headers, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp.headers


async def guest_token(http, api):
    status, body, _ = await call(http, "POST", f"{api.url}/api/1.1/guest/activate.json")
    assert status == 200, body
    return body["guest_token"]


async def user_token(http, api, user="user0001"):
    status, body, _ = await call(
        http, "POST", f"{api.url}/api/1.1/auth/login.json", json={"username": user, "password": LAB_PASSWORD}
    )
    assert status == 200, body
    return body["token"]


def message(body) -> str:
    return body["errors"][0]["message"]


async def test_guest_token_reads_the_home_timeline(start_service, http):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/timeline/home.json", token)
    assert status == 200
    assert body["user"] == "guest"
    assert {t["text"] for t in body["tweets"]} >= {text for _, text in SEED_TWEETS}
    assert metric_value(api.app, "failwhale_http_requests_total", route="home_timeline", code="200") == 1


async def test_every_guest_route_answers_with_a_guest_token(start_service, http, arch):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    paths = {
        "account": "/api/1.1/account/settings.json",
        "user": "/api/1.1/users/user0003.json",
        "trends": "/api/1.1/trends.json",
        "notifications": "/api/1.1/notifications.json",
        "show_tweet": "/api/1.1/statuses/1.json",
    }
    guest_routes = {r.name for r in arch.api.routes if r.auth == "guest" and r.method == "GET"}
    assert set(paths) <= guest_routes
    for name, path in paths.items():
        status, body, _ = await call(http, "GET", f"{api.url}{path}", token)
        assert status == 200, (name, body)
        assert metric_value(api.app, "failwhale_http_requests_total", route=name, code="200") == 1


async def test_path_parameters_reach_the_backend(start_service, http):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/users/user0042.json", token)
    assert (status, body["screen_name"]) == (200, "user0042")
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/users/nobody.json", token)
    assert status == 404  # the backend's own answer, passed through
    assert "nobody" in message(body)


async def test_missing_token_is_401_naming_the_header(start_service, http):
    api = await start_api(start_service)
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwdw=="}):
        status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/timeline/home.json", headers=headers)
        assert status == 401
        assert "Authorization" in message(body)
    assert metric_value(api.app, "failwhale_api_token_checks_total") == 0  # auth was not asked


async def test_bad_token_is_401(start_service, http):
    api = await start_api(start_service)
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/timeline/home.json", "made-up-token")
    assert status == 401
    assert message(body)
    # A refused token is not cached: asking again asks auth again.
    await call(http, "GET", f"{api.url}/api/1.1/timeline/home.json", "made-up-token")
    assert metric_value(api.app, "failwhale_api_token_checks_total", result="verified") == 2


async def test_user_route_refuses_a_guest_token(start_service, http):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    status, body, _ = await call(http, "POST", f"{api.url}/api/1.1/statuses/update.json", token, json={"text": "hi"})
    assert status == 401
    assert "logged-in user" in message(body)


async def test_login_then_post_tweet(start_service, http):
    api = await start_api(start_service)
    token = await user_token(http, api, "user0314")
    status, tweet, _ = await call(
        http, "POST", f"{api.url}/api/1.1/statuses/update.json", token, json={"text": "posted through the API"}
    )
    assert status == 201
    # The tweet is stored as the token's owner, whatever the client claims.
    assert (tweet["user"], tweet["text"]) == ("user0314", "posted through the API")
    status, shown, _ = await call(http, "GET", f"{api.url}/api/1.1/statuses/{tweet['id']}.json", token)
    assert (status, shown) == (200, tweet)


async def test_client_cannot_choose_its_user_with_x_user(start_service, http):
    api = await start_api(start_service)
    token = await user_token(http, api, "user0001")
    headers = {"Authorization": f"Bearer {token}", "X-User": "user0002"}
    status, tweet, _ = await call(
        http, "POST", f"{api.url}/api/1.1/statuses/update.json", json={"text": "spoof"}, headers=headers
    )
    assert (status, tweet["user"]) == (201, "user0001")


async def test_verify_credentials_says_who_the_user_is(start_service, http):
    api = await start_api(start_service)
    token = await user_token(http, api, "user0021")
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/account/verify_credentials.json", token)
    assert (status, body["screen_name"], body["guest"]) == (200, "user0021", False)


async def test_token_is_verified_once_then_cached(start_service, http):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    n = 4
    for path in ["/api/1.1/timeline/home.json"] * (n - 1) + ["/api/1.1/notifications.json"]:
        status, _, _ = await call(http, "GET", f"{api.url}{path}", token)
        assert status == 200
    assert metric_value(api.app, "failwhale_api_token_checks_total", result="verified") == 1
    assert metric_value(api.app, "failwhale_api_token_checks_total", result="cached") == n - 1
    assert (
        metric_value(api.app, "failwhale_upstream_requests_total", upstream="auth", outcome="ok") == 2
    )  # activate + one verify


async def test_token_cache_expires_after_its_ttl(start_service, http, arch_data):
    arch_data["api"]["token_cache_ttl_s"] = 0.05
    api = await start_api(start_service, parse_architecture(arch_data))
    token = await guest_token(http, api)
    await call(http, "GET", f"{api.url}/api/1.1/notifications.json", token)
    await asyncio.sleep(0.06)
    await call(http, "GET", f"{api.url}/api/1.1/notifications.json", token)
    assert metric_value(api.app, "failwhale_api_token_checks_total", result="verified") == 2


async def test_wrong_method_on_a_known_path_is_405(start_service, http):
    api = await start_api(start_service)
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/auth/login.json")
    assert status == 405
    assert "POST" in message(body)
    assert metric_value(api.app, "failwhale_http_requests_total", route="unmatched", code="405") == 1


async def test_405_says_which_methods_are_allowed(start_service, http):
    api = await start_api(start_service)
    _, _, headers = await call(http, "GET", f"{api.url}/api/1.1/auth/login.json")
    assert headers.get("Allow") == "POST"


async def test_unknown_api_path_is_404_labelled_unmatched(start_service, http):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    for path in ("/api/1.1/nothing.json", "/api/1.1/users/a/b.json", "/elsewhere"):
        status, body, _ = await call(http, "GET", f"{api.url}{path}", token)
        assert status == 404
        assert message(body)
    assert metric_value(api.app, "failwhale_http_requests_total", route="unmatched", code="404") == 3
    assert metric_value(api.app, "failwhale_api_token_checks_total") == 0


async def test_auth_rate_limit_passes_through_with_retry_after(start_service, http, arch_data):
    arch_data["backends"]["auth"]["buckets"]["login"] = {"rate_per_s": 0.01, "burst": 1}
    api = await start_api(start_service, parse_architecture(arch_data))
    await user_token(http, api)
    status, body, headers = await call(
        http, "POST", f"{api.url}/api/1.1/auth/login.json", json={"username": "user0001", "password": LAB_PASSWORD}
    )
    assert status == 429
    assert message(body) == "Rate limit exceeded"
    assert int(headers["Retry-After"]) >= 1
    assert metric_value(api.app, "failwhale_http_requests_total", route="login", code="429") == 1


async def test_rate_limited_token_check_passes_through(start_service, http, arch_data):
    arch_data["backends"]["auth"]["buckets"]["verify"] = {"rate_per_s": 0.01, "burst": 1}
    api = await start_api(start_service, parse_architecture(arch_data))
    first, second = await guest_token(http, api), await guest_token(http, api)
    assert (await call(http, "GET", f"{api.url}/api/1.1/trends.json", first))[0] == 200
    status, body, headers = await call(http, "GET", f"{api.url}/api/1.1/trends.json", second)
    assert (status, message(body)) == (429, "Rate limit exceeded")
    assert "Retry-After" in headers


async def test_backend_down_is_502_json(start_service, http):
    api = await start_api(start_service, without=("notifications",))
    token = await guest_token(http, api)
    status, body, headers = await call(http, "GET", f"{api.url}/api/1.1/notifications.json", token)
    assert status == 502
    assert headers["Content-Type"].startswith("application/json")
    assert "notifications" in message(body)
    assert (
        metric_value(api.app, "failwhale_upstream_requests_total", upstream="notifications", outcome="connection_error")
        == 1
    )
    # Other routes are unaffected.
    assert (await call(http, "GET", f"{api.url}/api/1.1/timeline/home.json", token))[0] == 200


async def test_auth_down_is_502_for_a_token_check(start_service, http):
    api = await start_api(start_service, without=("auth",))
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/trends.json", "some-token")
    assert status == 502
    assert "auth" in message(body)


async def test_slow_backend_is_504(start_service, http, arch_data):
    arch_data["backends"]["timeline"].update(build_ms=400, cache_ttl_s=0)
    arch_data["api"]["upstreams"]["timeline"].update(timeout_s=0.1, retries=0)
    api = await start_api(start_service, parse_architecture(arch_data))
    token = await guest_token(http, api)
    status, body, _ = await call(http, "GET", f"{api.url}/api/1.1/timeline/home.json", token)
    assert status == 504
    assert "timeline timed out" in message(body)
    assert metric_value(api.app, "failwhale_upstream_requests_total", upstream="timeline", outcome="timeout") == 1


async def test_route_table_follows_an_architecture_swap(start_service, http, arch_data):
    api = await start_api(start_service)
    token = await guest_token(http, api)
    arch_data["version"] = "v2"
    for route in arch_data["api"]["routes"]:
        if route["name"] == "trends":
            route["path"] = "/api/2/trends.json"
    doc = {"architecture": parse_architecture(arch_data).model_dump(mode="json")}
    async with http.put(
        f"{api.url}/control/architecture", json=doc, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 200
    assert (await call(http, "GET", f"{api.url}/api/1.1/trends.json", token))[0] == 404
    assert (await call(http, "GET", f"{api.url}/api/2/trends.json", token))[0] == 200


async def test_logout_through_a_replica_ends_the_session_there(start_service, http):
    api = await start_api(start_service)
    token = await user_token(http, api)
    assert (await call(http, "GET", f"{api.url}/api/1.1/account/verify_credentials.json", token))[0] == 200
    assert (await call(http, "POST", f"{api.url}/api/1.1/auth/logout.json", token))[0] == 200
    status, _, _ = await call(
        http, "POST", f"{api.url}/api/1.1/statuses/update.json", token, json={"text": "after logout"}
    )
    assert status == 401


async def test_skeleton_routes_keep_their_own_labels_on_replicas(start_service, http):
    from tests.conftest import metric_value

    api = await start_service("api-1")
    async with http.get(f"{api.url}/healthz") as resp:
        assert resp.status == 200
    assert metric_value(api.app, "failwhale_http_requests_total", route="/healthz") == 1
    assert metric_value(api.app, "failwhale_http_requests_total", route="unmatched") == 0

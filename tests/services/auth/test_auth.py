"""The auth backend over real HTTP: tokens, logins, token checks, sessions and rate limits."""

from __future__ import annotations

import asyncio

import pytest

from services.architecture import parse_architecture
from services.auth.app import LAB_PASSWORD, STATE
from tests.conftest import TOKEN, metric_value

CONTROL = {"Authorization": f"Bearer {TOKEN}"}


async def post(http, url, payload=None, headers=None):
    async with http.post(url, json=payload, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def login(http, auth, username="user0001", password=LAB_PASSWORD):
    return await post(http, f"{auth.url}/internal/login", {"username": username, "password": password})


async def verify(http, auth, token):
    return await post(http, f"{auth.url}/internal/verify", {"token": token})


def with_login_bucket(arch_data, rate_per_s, burst):
    arch_data["backends"]["auth"]["buckets"]["login"] = {"rate_per_s": rate_per_s, "burst": burst}
    return parse_architecture(arch_data)


def sessions(auth, kind):
    return metric_value(auth.app, "failwhale_auth_sessions", kind=kind)


async def test_guest_token_is_issued_and_verifies_as_guest(start_service, http):
    auth = await start_service("auth")
    status, body, _ = await post(http, f"{auth.url}/internal/guest/activate")
    assert status == 200
    token = body["guest_token"]
    assert isinstance(token, str) and len(token) >= 16
    status, who, _ = await verify(http, auth, token)
    assert status == 200
    assert (who["user"], who["kind"]) == ("guest", "guest")
    assert 0 < who["expires_in"] <= auth.ctx.arch.backend("auth").guest_token_ttl_s


async def test_guest_tokens_are_distinct(start_service, http):
    auth = await start_service("auth")
    tokens = {(await post(http, f"{auth.url}/internal/guest/activate"))[1]["guest_token"] for _ in range(5)}
    assert len(tokens) == 5


async def test_login_returns_a_user_token_and_profile(start_service, http):
    auth = await start_service("auth")
    status, body, _ = await login(http, auth, "user0042")
    assert status == 200
    assert body["user"]["screen_name"] == "user0042"
    status, who, _ = await verify(http, auth, body["token"])
    assert status == 200
    assert (who["user"], who["kind"]) == ("user0042", "user")
    assert 0 < who["expires_in"] <= auth.ctx.arch.backend("auth").session_ttl_s


async def test_login_profile_matches_the_public_user_page(start_service, http):
    auth = await start_service("auth")
    _, body, _ = await login(http, auth, "user0042")
    async with http.get(f"{auth.url}/internal/users/user0042") as resp:
        assert resp.status == 200
        assert await resp.json() == body["user"]


async def test_wrong_password_is_401(start_service, http):
    auth = await start_service("auth")
    status, body, _ = await login(http, auth, "user0001", LAB_PASSWORD + "x")
    assert status == 401
    assert body["errors"][0]["message"] == "Wrong username or password"


@pytest.mark.parametrize("username", ["nobody", "user0", "user99999", "user", "USER0001"])
async def test_unknown_user_is_401_same_as_wrong_password(start_service, http, username):
    auth = await start_service("auth")
    status, body, _ = await login(http, auth, username)
    assert status == 401
    _, wrong_pw, _ = await login(http, auth, "user0001", "nope")
    assert body == wrong_pw  # no hint whether the account exists


async def test_last_seeded_user_exists_and_one_more_does_not(start_service, http):
    auth = await start_service("auth")
    n = auth.ctx.arch.backend("auth").users
    assert (await login(http, auth, f"user{n:04d}"))[0] == 200
    assert (await login(http, auth, f"user{n + 1:04d}"))[0] == 401


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"username": "user0001"},
        {"password": LAB_PASSWORD},
        {"username": 1, "password": LAB_PASSWORD},
        {"username": "user0001", "password": None},
    ],
)
async def test_login_missing_fields_is_400(start_service, http, payload):
    auth = await start_service("auth")
    status, body, _ = await post(http, f"{auth.url}/internal/login", payload)
    assert status == 400
    assert "'username' and 'password'" in body["errors"][0]["message"]


async def test_empty_login_body_is_400(start_service, http):
    auth = await start_service("auth")
    async with http.post(f"{auth.url}/internal/login") as resp:
        assert resp.status == 400
        assert "empty" in (await resp.json())["errors"][0]["message"]


async def test_verify_unknown_token_is_401_and_missing_token_400(start_service, http):
    auth = await start_service("auth")
    assert (await verify(http, auth, "not-a-token"))[0] == 401
    assert (await verify(http, auth, ""))[0] == 400
    assert (await post(http, f"{auth.url}/internal/verify", {}))[0] == 400


async def test_expired_token_is_refused_and_dropped(start_service, http, arch_data):
    # Long enough for the first check to land inside it even on a busy machine.
    arch_data["backends"]["auth"]["guest_token_ttl_s"] = 0.5
    auth = await start_service("auth", architecture=parse_architecture(arch_data))
    token = (await post(http, f"{auth.url}/internal/guest/activate"))[1]["guest_token"]
    assert (await verify(http, auth, token))[0] == 200
    await asyncio.sleep(0.6)
    assert (await verify(http, auth, token))[0] == 401
    assert sessions(auth, "guest") == 0


async def test_sessions_gauge_counts_users_and_guests(start_service, http):
    auth = await start_service("auth")
    for name in ("user0001", "user0002", "user0001"):
        assert (await login(http, auth, name))[0] == 200
    for _ in range(2):
        await post(http, f"{auth.url}/internal/guest/activate")
    await login(http, auth, "user0003", "wrong")  # a failed login holds no session
    assert sessions(auth, "user") == 3
    assert sessions(auth, "guest") == 2


async def test_logout_invalidates_the_token(start_service, http):
    auth = await start_service("auth")
    _, keep, _ = await login(http, auth, "user0001")
    _, gone, _ = await login(http, auth, "user0001")
    status, body, _ = await post(
        http, f"{auth.url}/internal/logout", headers={"Authorization": f"Bearer {gone['token']}"}
    )
    assert (status, body) == (200, {"logged_out": True})
    assert (await verify(http, auth, gone["token"]))[0] == 401
    assert (await verify(http, auth, keep["token"]))[0] == 200  # other sessions stay
    assert sessions(auth, "user") == 1
    # Logging out twice, or with no token, is refused.
    assert (await post(http, f"{auth.url}/internal/logout", headers={"Authorization": f"Bearer {gone['token']}"}))[
        0
    ] == 401
    assert (await post(http, f"{auth.url}/internal/logout"))[0] == 401
    assert sessions(auth, "user") == 1


async def test_account_and_user_pages(start_service, http):
    auth = await start_service("auth")
    async with http.get(f"{auth.url}/internal/account") as resp:
        assert resp.status == 200
        assert (await resp.json())["guest"] is True
    async with http.get(f"{auth.url}/internal/account", headers={"X-User": "user0007"}) as resp:
        body = await resp.json()
        assert (body["screen_name"], body["guest"]) == ("user0007", False)
    async with http.get(f"{auth.url}/internal/users/nobody") as resp:
        assert resp.status == 404
        assert "nobody" in (await resp.json())["errors"][0]["message"]


async def test_third_login_in_a_tiny_bucket_is_429(start_service, http, arch_data):
    auth = await start_service("auth", architecture=with_login_bucket(arch_data, 0.5, 2))
    assert [(await login(http, auth))[0] for _ in range(2)] == [200, 200]
    status, body, headers = await login(http, auth)
    assert status == 429
    assert body["errors"][0]["message"] == "Rate limit exceeded"
    assert int(headers["Retry-After"]) >= 1
    assert metric_value(auth.app, "failwhale_auth_rate_limited_total", endpoint="login", bucket="login") == 1


async def test_other_endpoints_keep_their_own_buckets(start_service, http, arch_data):
    auth = await start_service("auth", architecture=with_login_bucket(arch_data, 0.5, 1))
    _, body, _ = await login(http, auth)
    assert (await login(http, auth))[0] == 429
    # Token checks and guest tokens draw from other buckets, so they still pass.
    assert (await verify(http, auth, body["token"]))[0] == 200
    assert (await post(http, f"{auth.url}/internal/guest/activate"))[0] == 200


async def test_shared_bucket_lets_verifies_exhaust_logins(start_service, http, arch_data):
    arch_data["backends"]["auth"]["buckets"]["login"] = {"rate_per_s": 0.5, "burst": 3}
    arch_data["backends"]["auth"]["endpoint_buckets"]["verify"] = "login"
    auth = await start_service("auth", architecture=parse_architecture(arch_data))
    status, body, _ = await login(http, auth)
    assert status == 200
    assert [(await verify(http, auth, body["token"]))[0] for _ in range(2)] == [200, 200]
    status, err, headers = await login(http, auth)
    assert status == 429
    assert err["errors"][0]["message"] == "Rate limit exceeded"
    assert "Retry-After" in headers
    assert (await verify(http, auth, body["token"]))[0] == 429
    assert metric_value(auth.app, "failwhale_auth_rate_limited_total", endpoint="login", bucket="login") == 1
    assert metric_value(auth.app, "failwhale_auth_rate_limited_total", endpoint="verify", bucket="login") == 1


async def test_architecture_swap_tightens_limits_without_restart(start_service, http, arch_data):
    auth = await start_service("auth")
    assert [(await login(http, auth))[0] for _ in range(3)] == [200, 200, 200]
    tight = with_login_bucket(arch_data, 0.5, 1)
    doc = {"architecture": tight.model_dump(mode="json")}
    async with http.put(f"{auth.url}/control/architecture", json=doc, headers=CONTROL) as resp:
        assert resp.status == 200, await resp.text()
    # The bucket keeps its earned tokens, capped at the new burst of 1.
    assert [(await login(http, auth))[0] for _ in range(2)] == [200, 429]


async def test_architecture_swap_loosens_limits_without_restart(start_service, http, arch_data):
    tight = with_login_bucket(arch_data, 0.01, 1)
    auth = await start_service("auth", architecture=tight)
    assert [(await login(http, auth))[0] for _ in range(2)] == [200, 429]
    loose = with_login_bucket(arch_data, 100_000, 50)
    async with http.put(
        f"{auth.url}/control/architecture", json={"architecture": loose.model_dump(mode="json")}, headers=CONTROL
    ) as resp:
        assert resp.status == 200, await resp.text()
    assert [(await login(http, auth))[0] for _ in range(5)] == [200] * 5


async def test_swap_can_make_endpoints_share_a_bucket(start_service, http, arch_data):
    auth = await start_service("auth", architecture=with_login_bucket(arch_data, 0.01, 2))
    _, body, _ = await login(http, auth)
    arch_data["backends"]["auth"]["endpoint_buckets"]["verify"] = "login"
    shared = parse_architecture(arch_data)
    async with http.put(
        f"{auth.url}/control/architecture", json={"architecture": shared.model_dump(mode="json")}, headers=CONTROL
    ) as resp:
        assert resp.status == 200
    assert (await verify(http, auth, body["token"]))[0] == 200  # the last token left in the now shared bucket
    assert (await verify(http, auth, body["token"]))[0] == 429
    assert (await login(http, auth))[0] == 429


async def test_non_ascii_digit_user_names_are_unknown_users(start_service, http):
    auth = await start_service("auth")
    async with http.get(f"{auth.url}/internal/users/user²") as resp:
        assert resp.status == 404
    assert (await login(http, auth, "user²"))[0] == 401


async def test_retry_after_is_long_enough_to_earn_a_token(start_service, http, arch_data):
    rate = 0.4  # one token every 2.5 s
    auth = await start_service("auth", architecture=with_login_bucket(arch_data, rate, 1))
    assert (await login(http, auth))[0] == 200
    status, _, headers = await login(http, auth)
    assert status == 429
    # Waiting Retry-After seconds must earn the missing token (a little slack for the time
    # that passed between the two logins).
    assert int(headers["Retry-After"]) * rate >= 0.99


async def test_a_login_session_is_exchanged_for_fresh_access_tokens(start_service, http):
    auth = await start_service("auth")
    async with http.post(f"{auth.url}/internal/login", json={"username": "user0042", "password": "failwhale"}) as resp:
        session = (await resp.json())["token"]
    tokens = set()
    for _ in range(2):  # every page view gets its own
        async with http.post(f"{auth.url}/internal/session", headers={"Authorization": f"Bearer {session}"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["screen_name"] == "user0042"
        tokens.add(body["access_token"])
    assert len(tokens) == 2 and session not in tokens
    access = tokens.pop()
    async with http.post(f"{auth.url}/internal/verify", json={"token": access}) as resp:
        assert (await resp.json())["user"] == "user0042"
    # An access token cannot mint more tokens, and neither can a guest token.
    async with http.post(f"{auth.url}/internal/session", headers={"Authorization": f"Bearer {access}"}) as resp:
        assert resp.status == 401
    async with http.post(f"{auth.url}/internal/guest/activate") as resp:
        guest = (await resp.json())["guest_token"]
    async with http.post(f"{auth.url}/internal/session", headers={"Authorization": f"Bearer {guest}"}) as resp:
        assert resp.status == 401
    async with http.post(f"{auth.url}/internal/session") as resp:
        assert resp.status == 401


async def test_past_its_cap_auth_forgets_the_oldest_tokens_first(start_service, http):
    auth = await start_service("auth")
    auth.app[STATE].max_tokens = 3
    tokens = []
    for _ in range(5):
        _, body, _ = await post(http, f"{auth.url}/internal/guest/activate")
        tokens.append(body["guest_token"])
    statuses = [(await verify(http, auth, token))[0] for token in tokens]
    assert statuses == [401, 401, 200, 200, 200]
    assert sessions(auth, "guest") == 3

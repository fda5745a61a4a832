"""Client classes (web / app / other) label metrics and never change what a service answers."""

from __future__ import annotations

import pytest

from services.common.clients import client_class
from tests.conftest import metric_value

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
ANDROID = "TwitterAndroid/9.70.0-release.0 (29700000-r-0) Pixel 7/13 (Google;Pixel 7;google;panther;0)"
IPHONE = "Twitter-iPhone/9.61 iOS/16.2 (Apple;iPhone14,2;;;;;1;2019)"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Client": "app"}, "app"),
        ({"X-Client": "web"}, "web"),
        ({"User-Agent": BROWSER}, "web"),
        ({"User-Agent": ANDROID}, "app"),
        ({"User-Agent": IPHONE}, "app"),
        ({}, "other"),
        ({"User-Agent": "curl/8.5.0"}, "other"),
        # The explicit header wins over the User-Agent...
        ({"X-Client": "app", "User-Agent": BROWSER}, "app"),
        # ...but only when it names a real class; anything else falls back to the User-Agent.
        ({"X-Client": "robot", "User-Agent": BROWSER}, "web"),
        # "Mozilla/" must start the agent, not merely appear in it.
        ({"User-Agent": "bot (compatible; like Mozilla/5.0)"}, "other"),
    ],
)
def test_client_class(headers, expected):
    assert client_class(headers) == expected


CASES = [
    ("app", {"X-Client": "app"}),
    ("web", {"User-Agent": BROWSER}),
    ("app", {"User-Agent": "TwitterAndroid/9.70"}),
    ("other", {}),
]


async def test_real_service_labels_requests_by_client(start_service, http):
    svc = await start_service("auth")
    for _, headers in CASES:
        async with http.get(f"{svc.url}/internal/users/user0042", headers=headers) as resp:
            assert resp.status == 200
    route = "/internal/users/{name}"
    for client in ("app", "web", "other"):
        expected = sum(1 for c, _ in CASES if c == client)
        assert (
            metric_value(svc.app, "failwhale_http_requests_total", route=route, client=client, code="200") == expected
        )
    assert metric_value(svc.app, "failwhale_http_request_duration_seconds_count", route=route) == len(CASES)


async def test_client_class_never_changes_the_answer(start_service, http):
    tweets = await start_service("tweets")
    auth = await start_service("auth")
    for url in (
        f"{auth.url}/internal/users/user0042",
        f"{auth.url}/internal/users/nobody",
        f"{tweets.url}/internal/tweets/recent?limit=3",
    ):
        answers = []
        for _, headers in CASES:
            async with http.get(url, headers=headers) as resp:
                answers.append((resp.status, resp.content_type, await resp.read()))
        assert all(a == answers[0] for a in answers), url

"""Mobile-app users: the API called directly, the way the iOS and Android apps do.

The app logs in once and keeps its long-lived token: most people who open the app that evening
signed in on some earlier day (``--app-signed-in``, the share of them; their sessions are opened
when the load starts, while the service is well), the rest sign in now. It keeps the last timeline and
notifications it fetched, and when a refresh fails it shows those (a *degraded* journey: the
user sees old content, not an error). It retries failed calls with exponential backoff and
full jitter, and waits at least as long as a ``Retry-After`` header asks.

``--app-cache off`` and ``--app-retries 0`` take those habits away, to show how much of the
app's resilience came from them.
"""

from __future__ import annotations

from typing import Any

import gevent
from locust import task

from loadtest.backoff import Backoff, parse_retry_after
from loadtest.cohort import Cohort
from loadtest.journey import reason_for

APP_UA = "TwitterAndroid/9.70.0-release.0 (29700000-r-0) Pixel 7/13 (Google;panther;google;panther;0;;1;2016)"
RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connection_error"})


# Sessions from earlier days, (username, token): each is handed to one user who opens the app.
SIGNED_IN: list[tuple[str, str]] = []


def sign_in_earlier(api_url: str, count: int, seed: int) -> int:
    """Open ``count`` app sessions now, standing for sign-ins on earlier days; how many worked."""
    import random

    import requests  # locust's own dependency; cooperative under gevent

    rng = random.Random(f"{seed}-signed-in")
    with requests.Session() as http:
        for _ in range(count):
            username = f"user{rng.randrange(1, 5001):04d}"
            try:
                resp = http.post(
                    f"{api_url}/api/1.1/auth/login.json",
                    json={"username": username, "password": "failwhale"},
                    headers={"User-Agent": APP_UA, "X-Client": "app"},
                    timeout=5,
                )
                token = resp.json().get("token") if resp.status_code == 200 else None
            except (requests.RequestException, ValueError):
                token = None
            if token:
                SIGNED_IN.append((username, token))
    return len(SIGNED_IN)


class AppUser(Cohort):
    weight = 60  # replaced from --web-share by the locustfile
    client_class, surface = "app", "app"
    network_timeout = 5.0
    connection_timeout = 3.0
    default_headers = {"User-Agent": APP_UA, "X-Client": "app", "Accept": "application/json"}

    def on_start(self) -> None:
        super().on_start()
        opts = self.opts
        self.use_cache = getattr(opts, "app_cache", "on") == "on"
        self.retries = getattr(opts, "app_retries", 3)
        self.backoff = Backoff(jitter=getattr(opts, "app_jitter", "on") == "on")
        self.token: str | None = None
        self.cache: dict[str, Any] = {}
        if SIGNED_IN and self.rng.random() < getattr(opts, "app_signed_in", 0.0):
            self.username, self.token = SIGNED_IN.pop()  # opens the app already signed in
        else:
            self.username = f"user{self.rng.randrange(1, 5001):04d}"
            self.login()

    # ---- calls ---------------------------------------------------------------------------

    def call(self, method: str, path: str, name: str, body: dict | None = None) -> tuple[str | None, Any]:
        """One API call with the app's retries; returns (problem reason or None, JSON body)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        reason: str | None = None
        for attempt in range(1 + self.retries):
            with self.client.request(
                method, path, name=f"app {name}", headers=headers, json=body, catch_response=True
            ) as resp:
                reason = reason_for(resp.status_code, getattr(resp, "error", None))
                if reason is None:
                    try:
                        return None, resp.json()
                    except ValueError:
                        reason = "bad_response"
                resp.failure(f"{name}: {reason} (HTTP {resp.status_code})")
                retry_after = parse_retry_after(resp.headers.get("Retry-After") if resp.headers else None)
            if reason not in RETRYABLE or attempt == self.retries:
                break
            gevent.sleep(self.backoff.delay(attempt, self.rng, retry_after))
        return reason, None

    def _signed_out(self, reason: str | None) -> None:
        if reason == "unauthorized":
            self.token = None  # the app drops a rejected token and signs in again next time

    # ---- journeys ------------------------------------------------------------------------

    def login(self) -> None:
        journey = self.journey("login")
        reason, data = self.call(
            "POST", "/api/1.1/auth/login.json", "login", {"username": self.username, "password": "failwhale"}
        )
        if reason is None and isinstance(data, dict) and data.get("token"):
            self.token = data["token"]
        else:
            journey.fail(reason or "bad_response")
        self.finish(journey)

    def _cached_read(self, journey_name: str, key: str, path: str) -> None:
        if self.token is None:
            return self.login()
        journey = self.journey(journey_name)
        reason, data = self.call("GET", path, key)
        if reason is None:
            if self.use_cache:
                self.cache[key] = data
        elif self.use_cache and key in self.cache:
            journey.degrade(reason)  # the app shows what it had: old, but not an error
        else:
            journey.fail(reason)
        self._signed_out(reason)
        self.finish(journey)

    @task(2)
    def home(self) -> None:
        self._cached_read("home", "home_timeline", "/api/1.1/timeline/home.json?count=20")

    @task(5)
    def refresh(self) -> None:
        self._cached_read("refresh", "home_timeline", "/api/1.1/timeline/home.json?count=20")

    @task(2)
    def notifications(self) -> None:
        self._cached_read("notifications", "notifications", "/api/1.1/notifications.json")

    @task(1)
    def post_tweet(self) -> None:
        if self.token is None:
            return self.login()
        journey = self.journey("post_tweet")
        text = f"from the app #{self.rng.randrange(1000)} #failwhale"
        reason, data = self.call("POST", "/api/1.1/statuses/update.json", "post_tweet", {"text": text})
        if reason is None and isinstance(data, dict):
            self.environment.failwhale_ledger.acked(data)
        else:
            journey.fail(reason or "bad_response")
        self._signed_out(reason)
        self.finish(journey)

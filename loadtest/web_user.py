"""Web-browser users: what the desktop page's JavaScript does, replayed by Locust.

A page view loads the page, then runs the page manifest the web service publishes at
``/pages.json`` (the very list the page's JavaScript runs): a fresh token exchange, then every
API call of the page at once. The page renders only if all of them succeed. There is no client
cache. When the page shows its error, the person waits a few seconds and reloads, and gives up
after a few tries.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
from gevent.pool import Group
from locust import task

from loadtest.cohort import Cohort
from loadtest.journey import Journey, reason_for

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0 Safari/537.36"


class WebUser(Cohort):
    weight = 40  # replaced from --web-share by the locustfile
    client_class, surface = "web", "website"
    # A person stares at a spinner for a while before deciding the page is broken.
    network_timeout = 10.0
    connection_timeout = 5.0
    default_headers = {"User-Agent": BROWSER_UA, "X-Client": "web", "Accept": "application/json"}

    manifest: dict | None = None  # shared by every WebUser of this process once fetched

    def on_start(self) -> None:
        super().on_start()
        opts = self.opts
        self.reloads = getattr(opts, "web_reloads", 2)
        self.session_token: str | None = None
        self.screen_name: str | None = None
        # About half the people on the site are logged in; the rest browse as guests.
        self.wants_login = self.rng.random() < getattr(opts, "web_login_share", 0.5)

    # ---- the page ------------------------------------------------------------------------

    def _manifest(self) -> dict | None:
        if WebUser.manifest is None:
            with self.client.get("/pages.json", name="/pages.json", catch_response=True) as resp:
                if resp.status_code == 200:
                    WebUser.manifest = resp.json()
                else:
                    resp.failure(f"page manifest unavailable: HTTP {resp.status_code}")
        return WebUser.manifest

    def _call(self, call: dict, token: str | None, body: dict | None = None) -> tuple[str | None, object]:
        """One API call of the page; returns (problem reason or None, parsed JSON body)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        path = call["path"]
        if call.get("query"):
            path += "?" + "&".join(f"{k}={v}" for k, v in call["query"].items())
        with self.client.request(
            call["method"], path, name=f"web {call['name']}", headers=headers, json=body, catch_response=True
        ) as resp:
            reason = reason_for(resp.status_code, getattr(resp, "error", None))
            data = None
            if reason is None:
                try:
                    data = resp.json()
                except ValueError:
                    reason = "bad_response"
            if reason is not None:
                resp.failure(f"{call['name']}: {reason} (HTTP {resp.status_code})")
            return reason, data

    def page_view(self) -> str | None:
        """Load the home page once, as the browser does; the reason it failed, or None."""
        manifest = self._manifest()
        if manifest is None:
            return "server_error"
        with self.client.get("/", name="web page", catch_response=True) as resp:
            reason = reason_for(resp.status_code, getattr(resp, "error", None))
            if reason is not None:
                resp.failure(f"page: {reason} (HTTP {resp.status_code})")
                return reason
        page = manifest["pages"]["home"]
        if self.session_token:
            # A fresh access token for this view, from the login session.
            reason, data = self._call(page["session"]["user"], self.session_token)
            if reason == "unauthorized":
                self.session_token = None  # logged out: the page shows the error, then a guest view
            if reason is not None:
                return reason
            token = data.get("access_token") if isinstance(data, dict) else None
            if not token:
                return "bad_response"
        else:
            reason, data = self._call(page["session"]["guest"], None)
            if reason is not None:
                return reason
            token = data.get("guest_token") if isinstance(data, dict) else None
            if not token:
                return "bad_response"
        # The page fires every call at once and renders only if all of them succeed.
        results = Group().map(lambda call: self._call(call, token)[0], page["calls"])
        return next((r for r in results if r is not None), None)

    def persist(
        self, journey: Journey, attempt: Callable[[], str | None], give_up_on: frozenset[str] = frozenset()
    ) -> bool:
        """A person who meets an error waits, tries again, and gives up after a few tries.

        ``attempt`` returns the reason it failed, or None. A success after a retry makes the
        journey degraded; giving up (or a reason in ``give_up_on``) makes it failed.
        """
        for n in range(1 + self.reloads):
            reason = attempt()
            if reason is None:
                if n:
                    journey.degrade(journey.reason)
                return True
            journey.reason = reason
            if reason in give_up_on:
                break
            if n < self.reloads:
                gevent.sleep(self.rng.uniform(1.0, 3.0))
        journey.fail(journey.reason)
        return False

    # ---- journeys ------------------------------------------------------------------------

    @task(5)
    def home(self) -> None:
        if self.wants_login and self.session_token is None:
            return self.login()
        journey = self.journey("home")
        self.persist(journey, self.page_view)
        self.finish(journey)

    @task(3)
    def refresh(self) -> None:
        journey = self.journey("refresh")  # on the web, a refresh is a whole new page view
        self.persist(journey, self.page_view)
        self.finish(journey)

    @task(1)
    def notifications(self) -> None:
        # The desktop page loads notifications with every view; opening them is a page view.
        journey = self.journey("notifications")
        self.persist(journey, self.page_view)
        self.finish(journey)

    @task(1)
    def post_tweet(self) -> None:
        if self.session_token is None:
            return self.home()
        manifest = self._manifest()
        if manifest is None:
            return
        journey = self.journey("post_tweet")
        text = f"evening thoughts #{self.rng.randrange(1000)} #failwhale"

        def press_tweet() -> str | None:
            reason, data = self._call(manifest["actions"]["post_tweet"], self.session_token, {"text": text})
            if reason is None and isinstance(data, dict):
                self.environment.failwhale_ledger.acked(data)
            elif reason == "unauthorized":
                self.session_token = None
            return reason

        # Logged out: pressing Tweet again will not help.
        self.persist(journey, press_tweet, give_up_on=frozenset({"unauthorized"}))
        self.finish(journey)

    def login(self) -> None:
        manifest = self._manifest()
        if manifest is None:
            return
        journey = self.journey("login")
        username = f"user{self.rng.randrange(1, 5001):04d}"

        def press_login() -> str | None:
            reason, data = self._call(
                manifest["actions"]["login"], None, {"username": username, "password": "failwhale"}
            )
            if reason is None:
                if isinstance(data, dict) and data.get("token"):
                    self.session_token, self.screen_name = data["token"], username
                else:
                    reason = "bad_response"
            return reason

        # After logging in, the site loads the home page as the user.
        if self.persist(journey, press_login):
            reason = self.page_view()
            if reason is not None:
                journey.fail(reason)
        self.finish(journey)

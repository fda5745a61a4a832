"""Two views of the service at one moment: the "works for me" user and a fresh web visitor.

On the night of the outage, someone who was already logged in to the app, with a timeline on
their phone, could honestly say "works for me" while new visitors to the website failed. The
runner reproduces that moment: before the timeline starts it signs an app user in and loads
their timeline (a warm cache); at a ``works_for_me`` step it looks again as the app does (the
same token, a few retries with backoff, the cached timeline if the refresh fails), and at the
same moment makes a fresh visit to the website the way the page does (a new guest token from
``/pages.json``'s recipe, then every call of the home page). Nothing here is special-cased by
the services: the probes are ordinary clients.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from chaos.records import AppUserView, WebVisit

APP_AGENT = "TwitterAndroid/9.70 (failwhale works-for-me probe)"
WEB_AGENT = "Mozilla/5.0 (failwhale fresh-visit probe)"
TIMELINE = "/api/1.1/timeline/home.json?count=20"
RETRY_WAITS_S = (0.25, 0.5, 1.0)  # the app's backoff, without jitter: one probe, nobody to collide with


def call(
    method: str, url: str, agent: str, token: str | None = None, body: dict | None = None, timeout_s: float = 5.0
) -> tuple[int, Any]:
    """(HTTP status, parsed JSON or None); status 0 when nothing came back."""
    headers = {"User-Agent": agent, "Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


def _what(status: int, body: Any) -> str:
    if status == 0:
        return "no answer"
    try:
        message = body["errors"][0]["message"]
    except (TypeError, KeyError, IndexError):
        message = ""
    return f"{status} {message}".strip()


@dataclass
class AppUser:
    """A logged-in app user who keeps their token and their last timeline."""

    api_url: str
    username: str = "user4999"
    token: str | None = None
    cached_at: float | None = None
    cached: Any = field(default=None, repr=False)

    def warm(self) -> bool:
        status, body = call(
            "POST",
            f"{self.api_url}/api/1.1/auth/login.json",
            APP_AGENT,
            body={"username": self.username, "password": "failwhale"},
        )
        if status != 200 or not isinstance(body, dict) or not body.get("token"):
            return False
        self.token = body["token"]
        return self.refresh()[0]

    def refresh(self) -> tuple[bool, str]:
        problem = ""
        for wait in (0.0, *RETRY_WAITS_S):
            time.sleep(wait)
            status, body = call("GET", f"{self.api_url}{TIMELINE}", APP_AGENT, self.token)
            if status == 200:
                self.cached, self.cached_at = body, time.time()
                return True, ""
            problem = _what(status, body)
            if status not in (0, 429) and status < 500:
                break  # not worth retrying, as the app judges it
        return False, problem

    def look(self) -> AppUserView:
        """What this user sees now: a fresh timeline, the cached one, or an error."""
        fresh, problem = self.refresh()
        if fresh:
            return AppUserView(sees="timeline", fresh=True)
        if self.cached_at is not None:
            return AppUserView(
                sees="timeline", fresh=False, age_s=round(time.time() - self.cached_at, 1), refresh_error=problem
            )
        return AppUserView(sees="error", fresh=False, refresh_error=problem)


def fresh_web_visit(site_url: str) -> WebVisit:
    """A first visit to the website, as the page makes it: a guest token, then every call."""
    status, manifest = call("GET", f"{site_url}/pages.json", WEB_AGENT)
    if status != 200 or not isinstance(manifest, dict):
        return WebVisit(page="failed", failed_call="pages.json", error=_what(status, manifest))
    home = manifest["pages"]["home"]
    guest = home["session"]["guest"]
    status, body = call(guest["method"], f"{site_url}{guest['path']}", WEB_AGENT, body={})
    token = body.get("guest_token") if isinstance(body, dict) else None
    if status != 200 or not token:
        return WebVisit(page="failed", failed_call=guest["name"], error=_what(status, body))
    for api in home["calls"]:
        query = "&".join(f"{k}={v}" for k, v in api.get("query", {}).items())
        status, body = call(
            api["method"], f"{site_url}{api['path']}" + (f"?{query}" if query else ""), WEB_AGENT, token
        )
        if status != 200:
            return WebVisit(page="failed", failed_call=api["name"], error=_what(status, body))
    return WebVisit(page="ok")


def describe(app: AppUserView, web: WebVisit) -> str:
    """One line for the progress display and the journal."""
    if app.sees == "timeline":
        seen = (
            "a fresh timeline"
            if app.fresh
            else f"its timeline from {app.age_s or 0:.0f}s ago (refresh failed: {app.refresh_error})"
        )
    else:
        seen = f"an error ({app.refresh_error})"
    visit = "the page loads" if web.page == "ok" else f"the page fails at {web.failed_call} ({web.error})"
    return f"logged-in app user with a warm cache sees {seen}; a fresh web visit: {visit}"

"""Auth backend app: who a token belongs to, and how fast anyone may ask.

Sessions and guest tokens live in this process's memory, so restarting auth logs everyone
out, as it did for real users on the night. Every endpoint draws from a rate-limit bucket
named in the architecture; two endpoints may share a bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from services.architecture.model import Architecture, AuthBackend
from services.auth.ratelimit import TokenBucket
from services.common.app import FAULTS, METRICS, ServiceContext, create_service_app, read_json, whole_number
from services.common.faults import FaultStore
from services.common.jsonbody import json_response
from services.common.metrics import HttpMetrics
from services.errors import BadRequest, NotFound, RateLimited, Unauthorized

# Every seeded account has this password: the lab is about availability, not secrecy.
LAB_PASSWORD = "failwhale"
GUEST = "guest"
PRUNE_EVERY_S = 10.0
# Live tokens auth keeps at most. Every guest page view mints one that lives hours, so over a
# long game the map would only grow; past the cap the oldest tokens go first (their holders
# get a 401, sign in again and carry on).
MAX_TOKENS = 200_000


@dataclass(slots=True)
class Session:
    user: str  # GUEST for guest tokens
    expires: float
    # "session": from a login, long-lived; "access": minted from a session for one page view.
    kind: str = "session"


class AuthMetrics:
    def __init__(self, base: HttpMetrics) -> None:
        s, r = base.service, base.replica
        self._limited = Counter(
            "failwhale_auth_rate_limited_total",
            "Requests refused with 429 'Rate limit exceeded', by endpoint and bucket.",
            ["service", "replica", "endpoint", "bucket"],
            registry=base.registry,
        )
        self.limited = lambda endpoint, bucket: self._limited.labels(s, r, endpoint, bucket).inc()
        self.sessions = Gauge(
            "failwhale_auth_sessions",
            "Live tokens held by auth, by kind (user or guest).",
            ["service", "replica", "kind"],
            registry=base.registry,
        )
        self.user_sessions = self.sessions.labels(s, r, "user")
        self.guest_sessions = self.sessions.labels(s, r, "guest")


class AuthState:
    def __init__(
        self, instance: str, arch: Architecture, metrics: AuthMetrics, faults: FaultStore | None = None
    ) -> None:
        self.instance = instance
        self.metrics = metrics
        self.faults = faults or FaultStore()
        self.fault_buckets: dict[int, TokenBucket] = {}  # by fault id, while a rate_limit fault lasts
        self.tokens: dict[str, Session] = {}
        self.max_tokens = MAX_TOKENS
        self.buckets: dict[str, TokenBucket] = {}
        self.apply(arch)

    @property
    def config(self) -> AuthBackend:
        return self._config

    def apply(self, arch: Architecture) -> None:
        cfg = arch.backend(self.instance)
        self._config = cfg
        for name, b in cfg.buckets.items():
            if name in self.buckets:
                self.buckets[name].resize(b.rate_per_s, b.burst)
            else:
                self.buckets[name] = TokenBucket(b.rate_per_s, b.burst)
        for name in set(self.buckets) - set(cfg.buckets):
            del self.buckets[name]

    def limit(self, endpoint: str) -> None:
        bucket_name = self._config.endpoint_buckets[endpoint]
        bucket = self.buckets[bucket_name]
        fault = self.faults.rate_limit(bucket_name)
        if fault is not None:  # a rate-limit change in force: its own bucket, for as long as it lasts
            bucket = self.fault_buckets.get(fault.id)
            if bucket is None:
                bucket = self.fault_buckets[fault.id] = TokenBucket(fault.spec.rate_per_s, fault.spec.burst)
        elif self.fault_buckets:
            self.fault_buckets.clear()
        wait = bucket.take()
        if wait is not None:
            self.metrics.limited(endpoint, bucket_name)
            raise RateLimited(retry_after=wait)

    def _gauge(self, user: str):
        return self.metrics.guest_sessions if user == GUEST else self.metrics.user_sessions

    def issue(self, user: str, ttl: float, kind: str = "session") -> str:
        token = secrets.token_urlsafe(24)
        while len(self.tokens) >= self.max_tokens:
            self.revoke(next(iter(self.tokens)))  # dicts keep insertion order: the oldest first
        self.tokens[token] = Session(user, time.monotonic() + ttl, kind)
        self._gauge(user).inc()
        return token

    def revoke(self, token: str) -> bool:
        sess = self.tokens.pop(token, None)
        if sess is None:
            return False
        self._gauge(sess.user).dec()
        return True

    def resolve(self, token: str) -> Session:
        sess = self.tokens.get(token)
        if sess is None or sess.expires < time.monotonic():
            self.revoke(token)
            raise Unauthorized()
        return sess

    def prune(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self.tokens.items() if s.expires < now]:
            self.revoke(token)

    def user_exists(self, name: str) -> bool:
        """Accounts are user0001 ... userNNNN, spelled exactly so (user1 is not user0001)."""
        n = whole_number(name[4:]) if name.startswith("user") else None
        return n is not None and 1 <= n <= self._config.users and name == f"user{n:04d}"


STATE = web.AppKey("auth_state", AuthState)


def user_profile(name: str) -> dict:
    n = int(name[4:])
    return {
        "screen_name": name,
        "name": f"Lab User {n}",
        "followers_count": (n * 7919) % 5000,
        "friends_count": (n * 104729) % 800,
    }


async def guest_activate(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.limit("guest_activate")
    token = state.issue(GUEST, state.config.guest_token_ttl_s)
    return json_response({"guest_token": token})


async def login(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("Login needs 'username' and 'password' strings")
    state.limit("login")
    if not state.user_exists(username) or password != LAB_PASSWORD:
        raise Unauthorized("Wrong username or password")
    token = state.issue(username, state.config.session_ttl_s)
    return json_response({"token": token, "user": user_profile(username)})


async def verify(request: web.Request) -> web.Response:
    """Who owns a token; the API replicas ask this (and cache the answer) on every call."""
    state = request.app[STATE]
    body = await read_json(request)
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise BadRequest("Verify needs a 'token' string")
    state.limit("verify")
    sess = state.resolve(token)
    return json_response(
        {
            "user": sess.user,
            "kind": "guest" if sess.user == GUEST else "user",
            "expires_in": round(sess.expires - time.monotonic()),
        }
    )


async def exchange_session(request: web.Request) -> web.Response:
    """A fresh, short-lived access token for a logged-in user's session: the desktop site asks
    for one on every page view, as it did for real (the session itself stays in the cookie)."""
    state = request.app[STATE]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("Missing session: send 'Authorization: Bearer <session token>'")
    state.limit("session")
    sess = state.resolve(header[7:])
    if sess.user == GUEST or sess.kind != "session":
        raise Unauthorized("Only a login session can be exchanged for an access token")
    token = state.issue(sess.user, state.config.access_token_ttl_s, kind="access")
    return json_response({"access_token": token, "screen_name": sess.user})


async def logout(request: web.Request) -> web.Response:
    state = request.app[STATE]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not state.revoke(header[7:]):
        raise Unauthorized()
    return json_response({"logged_out": True})


async def account(request: web.Request) -> web.Response:
    user = request.headers.get("X-User", GUEST)
    if user == GUEST:
        return json_response({"screen_name": None, "guest": True, "language": "en"})
    return json_response({**user_profile(user), "guest": False, "language": "en"})


async def show_user(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not request.app[STATE].user_exists(name):
        raise NotFound(f"User {name} not found")
    return json_response(user_profile(name))


async def _prune_ctx(app: web.Application):
    """Drop expired tokens now and then so memory stays flat on long runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            app[STATE].prune()

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(ctx: ServiceContext) -> web.Application:
    routes = [
        web.post("/internal/guest/activate", guest_activate),
        web.post("/internal/login", login),
        web.post("/internal/verify", verify),
        web.post("/internal/logout", logout),
        web.post("/internal/session", exchange_session),
        web.get("/internal/account", account),
        web.get("/internal/users/{name}", show_user),
    ]
    app = create_service_app(ctx, routes, cleanup=[_prune_ctx])
    state = AuthState(ctx.instance, ctx.arch, AuthMetrics(app[METRICS]), app[FAULTS])
    ctx.architecture.on_change(lambda _old, new: state.apply(new))
    app[STATE] = state
    return app

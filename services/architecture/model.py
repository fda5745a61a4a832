"""Typed model of an architecture file (see ``v1.yaml``) and the holder that swaps it at run time
(each change under a lease that lapses back to the baseline unless renewed).

An architecture can be *scaled* (:meth:`Architecture.scaled`) so a lab serves k times the users
with the same story: every per-time capacity grows k-fold, every time constant stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from configfiles.yamlconf import load_model, validate

InstanceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
Seconds = Annotated[float, Field(ge=0, le=3600)]
Method = Literal["GET", "POST", "PUT", "DELETE"]

# The kinds of process the code knows how to run; an instance names one of them.
KINDS = ("web", "edge", "api", "auth", "timeline", "tweets", "notifications")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Upstream(_Model):
    """How a caller reaches one dependency."""

    service: InstanceName
    timeout_s: PositiveFloat = 1.0
    retries: Annotated[int, Field(ge=0, le=5)] = 0
    retry_backoff_s: Seconds = 0.05


class WebSection(_Model):
    instances: list[InstanceName] = Field(min_length=1)
    api: Upstream


class EdgeSection(_Model):
    instances: list[InstanceName] = Field(min_length=1)
    timeout_s: PositiveFloat = 3.0
    # Another replica is tried after a connection failure or timeout, for idempotent requests.
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    eject_after_failures: PositiveInt = 3
    eject_for_s: PositiveFloat = 5.0
    # API replicas the edge sends nothing to (an operator drained them); they keep running.
    drained: list[InstanceName] = []


class Route(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    method: Method
    path: Annotated[str, Field(pattern=r"^/")]
    upstream: str
    upstream_path: Annotated[str, Field(pattern=r"^/")]
    # none: anyone; guest: a guest or user token; user: a logged-in user's token.
    auth: Literal["none", "guest", "user"] = "guest"
    # A successful call ends the caller's token (logout): the replica forgets it at once.
    revokes_token: bool = False


class ApiSection(_Model):
    instances: list[InstanceName] = Field(min_length=1)
    # How long a replica trusts a token it has verified with auth before asking again.
    token_cache_ttl_s: Seconds = 30.0
    upstreams: dict[str, Upstream]
    routes: list[Route] = Field(min_length=1)

    @model_validator(mode="after")
    def _routes_name_known_upstreams(self) -> ApiSection:
        names = set()
        for i, r in enumerate(self.routes):
            if r.upstream not in self.upstreams:
                raise ValueError(f"routes[{i}] ({r.name}) uses unknown upstream {r.upstream!r}")
            if r.name in names:
                raise ValueError(f"routes[{i}]: route name {r.name!r} is used twice")
            names.add(r.name)
        return self


class Bucket(_Model):
    """A token bucket: ``burst`` requests at once, refilled at ``rate_per_s``."""

    rate_per_s: PositiveFloat
    burst: PositiveInt

    def scaled(self, k: float) -> Bucket:
        return self.model_copy(update={"rate_per_s": self.rate_per_s * k, "burst": scaled_count(self.burst, k)})


class AuthBackend(_Model):
    kind: Literal["auth"]
    session_ttl_s: PositiveFloat = 86400.0
    guest_token_ttl_s: PositiveFloat = 10800.0
    access_token_ttl_s: PositiveFloat = 900.0
    buckets: dict[str, Bucket]
    # Which bucket each endpoint draws from; two endpoints may share one bucket.
    endpoint_buckets: dict[Literal["login", "guest_activate", "verify", "session"], str]
    users: PositiveInt = 5000

    @model_validator(mode="after")
    def _buckets_exist(self) -> AuthBackend:
        for endpoint, bucket in self.endpoint_buckets.items():
            if bucket not in self.buckets:
                raise ValueError(f"endpoint_buckets.{endpoint} names unknown bucket {bucket!r}")
        return self

    def scaled(self, k: float) -> AuthBackend:
        return self.model_copy(update={"buckets": {name: b.scaled(k) for name, b in self.buckets.items()}})


class TimelineBackend(_Model):
    kind: Literal["timeline"]
    # Timeline builds that may run at once; more wait up to queue_timeout_s, then get 503.
    capacity: PositiveInt = 32
    queue_timeout_s: Seconds = 0.5
    cache_ttl_s: Seconds = 5.0
    build_ms: Annotated[float, Field(ge=0, le=10000)] = 15.0
    page_size: Annotated[int, Field(ge=1, le=200)] = 20
    tweets: Upstream

    def scaled(self, k: float) -> TimelineBackend:
        return self.model_copy(update={"capacity": scaled_count(self.capacity, k)})


class TweetsBackend(_Model):
    kind: Literal["tweets"]
    max_length: Annotated[int, Field(ge=1, le=10000)] = 280


class NotificationsBackend(_Model):
    kind: Literal["notifications"]
    page_size: Annotated[int, Field(ge=1, le=200)] = 20


Backend = Annotated[
    AuthBackend | TimelineBackend | TweetsBackend | NotificationsBackend,
    Field(discriminator="kind"),
]


class Architecture(_Model):
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
    description: str = ""
    web: WebSection
    edge: EdgeSection
    api: ApiSection
    backends: dict[InstanceName, Backend]

    @model_validator(mode="after")
    def _topology_is_consistent(self) -> Architecture:
        names = self.instance_kinds()
        for up_name, up in {**self.api.upstreams, "web.api": self.web.api}.items():
            if up.service not in names:
                raise ValueError(f"upstream {up_name} points at unknown instance {up.service!r}")
        for name in self.edge.drained:
            if name not in self.api.instances:
                raise ValueError(f"edge.drained names {name!r}, which is not an API replica")
        if set(self.api.instances) <= set(self.edge.drained):
            raise ValueError("edge.drained names every API replica: the edge would have nowhere to send")
        for name, b in self.backends.items():
            if isinstance(b, TimelineBackend) and b.tweets.service not in names:
                raise ValueError(f"backends.{name}.tweets points at unknown instance {b.tweets.service!r}")
        return self

    def instance_kinds(self) -> dict[str, str]:
        """Every process this architecture runs, by instance name, with its kind."""
        out: dict[str, str] = {}
        groups: list[tuple[str, list[str]]] = [
            ("web", self.web.instances),
            ("edge", self.edge.instances),
            ("api", self.api.instances),
        ]
        groups += [(b.kind, [name]) for name, b in self.backends.items()]
        for kind, instances in groups:
            for name in instances:
                if name in out:
                    raise ValueError(f"instance {name!r} is declared twice")
                out[name] = kind
        return out

    def serving_replicas(self) -> list[str]:
        """The API replicas the edge sends requests to: all but the drained ones."""
        return [r for r in self.api.instances if r not in self.edge.drained]

    def backend(self, name: str) -> Any:
        return self.backends[name]

    def scaled(self, k: float) -> Architecture:
        """This architecture for k times the users, telling the same story.

        Scaled, because they are what a given number of users uses up per unit of time: each
        auth bucket's ``rate_per_s`` and ``burst``, and the timeline's ``capacity`` (builds at
        once). Integers are rounded and kept at least 1.

        Not scaled, because they are time constants or counts a user meets the same however
        many others there are: every timeout, retry count and backoff (upstreams, edge), the
        edge's ejection (failures before, seconds out), token, session and cache lifetimes
        (``token_cache_ttl_s``, ``*_ttl_s``, ``cache_ttl_s``), the timeline's ``queue_timeout_s``
        and ``build_ms``, page sizes and ``max_length`` (what one answer holds). Auth's ``users``
        is the number of accounts, a population rather than a rate: the load picks its users
        among a fixed 5000 (loadtest), however many run. Instances and routes (the topology)
        stay: more users meet the same processes, each with more capacity.
        """
        if k <= 0:
            raise ValueError(f"scale must be above 0, not {k:g}")
        backends = {
            name: b.scaled(k) if isinstance(b, (AuthBackend, TimelineBackend)) else b
            for name, b in self.backends.items()
        }
        return self.model_copy(update={"backends": backends})


def scaled_count(n: int, k: float) -> int:
    """A whole capacity times k: rounded, and never below 1 (a capacity of 0 serves nobody)."""
    return max(1, round(n * k))


def load_architecture(path: str | Path) -> Architecture:
    return load_model(Architecture, path)


def parse_architecture(data: Any, where: str = "architecture") -> Architecture:
    """Validate an architecture sent as JSON (e.g. to a replica's control endpoint)."""
    return validate(Architecture, data, where)


Listener = Callable[[Architecture, Architecture], None]

# A change to a process's architecture is a lease: unless its author renews it, the process goes
# back to its baseline by itself, so a rollout or lever whose author crashed does not outlive it.
# The one definition: the services enforce it, the chaos engine's renewers and --lease follow it.
DEFAULT_LEASE_S = 15.0
MAX_LEASE_S = 3600.0


class ArchitectureState:
    """The architecture one process runs now; listeners resize pools and buckets on a swap.

    A change may hold a *lease*: it runs until ``lease_until`` (a ``time.monotonic()`` reading)
    unless renewed, then the process goes back to its baseline by itself, so a change whose
    author crashed or lost the network does not outlive it. The baseline never has a lease.
    Methods that read the clock take ``now`` from the caller, so they stay pure.
    """

    def __init__(self, initial: Architecture) -> None:
        self.current = initial
        self.baseline = initial
        self.lease_until: float | None = None
        # When `failwhale halt` last put this process back (time.monotonic()): a rollout that
        # started before then stops, whichever machine it runs on.
        self.halted_at: float | None = None
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def swap(self, new: Architecture) -> Architecture:
        """Run ``new`` with no lease (permanently); the architecture it replaced."""
        return self._swap(new, None)

    def apply(self, new: Architecture, lease_s: float | None, now: float) -> Architecture:
        """Run ``new`` until ``now + lease_s``, or permanently when ``lease_s`` is None; the
        architecture it replaced. The baseline version takes no lease: there is nothing to undo."""
        until = None if lease_s is None or new.version == self.baseline.version else now + lease_s
        return self._swap(new, until)

    def _swap(self, new: Architecture, lease_until: float | None) -> Architecture:
        # The lease is set before listeners run, so one that fails cannot leave a stale lease.
        old, self.current, self.lease_until = self.current, new, lease_until
        for listener in self._listeners:
            listener(old, new)
        return old

    def halt(self, now: float) -> Architecture:
        """Back to the baseline for good, remembering when: the architecture it left."""
        self.halted_at = now
        return self._swap(self.baseline, None)

    def halted_ago(self, now: float) -> float | None:
        """Seconds since the last halt, or None when this process was never halted."""
        return None if self.halted_at is None else now - self.halted_at

    def lease_remaining(self, now: float) -> float | None:
        """Seconds left on the lease (0 once due), or None when what runs has no lease."""
        return None if self.lease_until is None else max(0.0, self.lease_until - now)

    def renew(self, version: str, lease_s: float, now: float) -> bool:
        """Extend the lease on ``version`` to ``now + lease_s``; True when ``version`` runs on.

        False when another version runs, when ``version`` is the baseline (nothing to renew) or
        when its lease is already due (a lapsed change is not revived). A permanent change is
        True and stays permanent.
        """
        if version != self.current.version or version == self.baseline.version:
            return False
        if self.lease_until is None:
            return True
        if now >= self.lease_until:
            return False
        self.lease_until = now + lease_s
        return True

    def lapse_if_due(self, now: float) -> Architecture | None:
        """Back to the baseline if the lease is due at ``now``: the architecture left, else None."""
        if self.lease_until is None or now < self.lease_until:
            return None
        return self._swap(self.baseline, None)


_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def compile_path(template: str) -> re.Pattern[str]:
    """``/api/1.1/users/{name}.json`` -> a regex with a named group per ``{param}``."""
    parts = _PARAM.split(template)
    out = []
    for i, part in enumerate(parts):
        out.append(f"(?P<{part}>[^/]+?)" if i % 2 else re.escape(part))
    return re.compile("^" + "".join(out) + "$")

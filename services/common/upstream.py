"""Calls from one service to another: timeouts, retries, metrics and error mapping in one place.

Used by the API replicas (to reach backends), the timeline (to reach tweets), and the two
proxies, web and edge. A failed call becomes a domain error (502/504) at the caller's edge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from services.architecture.model import Upstream
from services.common.faults import FaultStore
from services.common.http1 import Http1Pool
from services.common.jsonbody import loads
from services.common.metrics import HttpMetrics
from services.config import LabConfig
from services.errors import UpstreamError, UpstreamTimeout

# Request headers a hop passes on; everything else (Host, Connection, ...) is per-hop.
FORWARD_REQUEST_HEADERS = ("Authorization", "Content-Type", "User-Agent", "X-Client", "X-User", "Accept")
FORWARD_RESPONSE_HEADERS = ("Content-Type", "Retry-After")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUS = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return loads(self.body)


class UpstreamClient:
    """One pool of keep-alive connections per process; every dependency call goes through ``call``."""

    def __init__(self, lab: LabConfig, metrics: HttpMetrics, faults: FaultStore | None = None) -> None:
        self.lab = lab
        self.metrics = metrics
        self.faults = faults or FaultStore()
        # No limit on connections: the lab's own capacity limits are the ones under study.
        self._pool: Http1Pool | None = None

    async def start(self) -> None:
        self._pool = Http1Pool()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def address_for(self, service: str) -> tuple[str, int]:
        service = self.faults.reroute(service)  # a reroute fault may send it elsewhere, even nowhere
        if service not in self.lab.ports:
            raise UpstreamError(f"No route to service {service!r}")
        return self.lab.host_of(service), self.lab.ports[service]

    async def call(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        *,
        name: str | None = None,
        body: bytes | None = None,
        query: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """Call ``upstream``; retry idempotent calls on 5xx/timeout/connection errors.

        ``path`` and ``query`` are sent byte for byte as received (already percent-encoded).
        Raises UpstreamTimeout or UpstreamError when no attempt produced a response.
        """
        assert self._pool is not None, "UpstreamClient.start() was not awaited"
        label = name or upstream.service
        host, port = self.address_for(upstream.service)
        target = f"{path}?{query}" if query else path
        attempts = 1 + (upstream.retries if method in IDEMPOTENT else 0)
        fwd = {k: v for k in FORWARD_REQUEST_HEADERS if (v := (headers or {}).get(k)) is not None}
        start = time.perf_counter()
        last_error: Exception | None = None
        outcome = "connection_error"
        resp_out: UpstreamResponse | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(upstream.retry_backoff_s * (2 ** (attempt - 1)))
            try:
                async with asyncio.timeout(upstream.timeout_s):
                    resp = await self._pool.request(host, port, method, target, fwd, body)
            except TimeoutError as e:  # before OSError: TimeoutError is one
                outcome, last_error, resp_out = "timeout", e, None
                continue
            except OSError as e:
                outcome, last_error, resp_out = "connection_error", e, None
                continue
            resp_out = UpstreamResponse(
                resp.status,
                resp.body,
                {k: v for k in FORWARD_RESPONSE_HEADERS if (v := resp.headers.get(k.lower())) is not None},
            )
            if resp_out.status < 400:
                outcome = "ok"
            elif resp_out.status < 500:
                outcome = "client_error"
            else:
                outcome = "server_error"
            if resp_out.status not in RETRYABLE_STATUS:
                break
        self.metrics.observe_upstream(label, outcome, time.perf_counter() - start)
        if resp_out is not None:
            return resp_out
        if outcome == "timeout":
            raise UpstreamTimeout(f"{label} timed out after {upstream.timeout_s:g}s") from last_error
        raise UpstreamError(f"{label} is unreachable") from last_error


def respond(resp: UpstreamResponse) -> web.Response:
    """Hand a dependency's answer back to our caller unchanged (status, body, type, Retry-After)."""
    return web.Response(status=resp.status, body=resp.body, headers=dict(resp.headers))


def forward_headers(request: web.Request) -> dict[str, str]:
    """The end-to-end headers of an incoming request, for a proxy to pass on."""
    return {k: v for k in FORWARD_REQUEST_HEADERS if (v := request.headers.get(k)) is not None}

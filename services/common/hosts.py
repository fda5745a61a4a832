"""Which Host headers a lab server answers: its own address, under the names that reach it.

A web page on another site can make the browser send requests to 127.0.0.1 under a name that
site controls (DNS rebinding) and read the answers. Such requests carry that name as their
Host, so every lab server (the services, the dashboard, the workshop's levers) answers only a
Host that names its own address, or none at all (HTTP/1.0 sends none: nothing to check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def own_names(host: str, port: int) -> frozenset[str]:
    """Every Host header value that names ``host:port``, in lower case."""
    bare = f"[{host}]" if ":" in host else host
    return frozenset({f"{bare}:{port}", bare, f"localhost:{port}", "localhost"})


def foreign_host(request: web.Request, allowed: frozenset[str]) -> str | None:
    """The request's Host header when it names another address than ours; None when it is ours or absent."""
    host = request.headers.get("Host")
    return host if host is not None and host.lower() not in allowed else None


def host_check(host: str, port: int, refuse: Callable[[str], web.StreamResponse]) -> Callable:
    """An aiohttp middleware answering ``refuse(foreign_host)`` to a request for another address."""
    allowed = own_names(host, port)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (foreign := foreign_host(request, allowed)) is not None:
            return refuse(foreign[:100])
        return await handler(request)

    return check

"""Keep-alive connections that survive a load generator with more than a thousand sockets open.

Before it reuses a kept-alive connection, geventhttpclient (FastHttpUser's client) asks
whether the socket became readable while idle, which would mean the server closed it. It asks
with ``select()``, which refuses any file descriptor above 1023 with a ValueError, and the pool
takes the error for a dead socket. A Locust process with a few hundred users holds more than
1,024 sockets (each user keeps one per call its page fires at once), so past that point nearly
every request threw its connection away and opened a new one: measured at 1,000 users, 600 new
TCP connections per second, a third of Locust's CPU in connecting and resolving, and the web
and edge processes accepting and closing all of them. A browser or an app keeps its
connections open, so the lab's traffic was not what it models either.

``install()`` gives the pool the same check made with ``poll()``, which has no such limit.
The load's locustfile installs it once per Locust process.
"""

from __future__ import annotations

import select

from gevent import monkey
from geventhttpclient.connectionpool import ConnectionPool

_HAS_POLL = hasattr(select, "poll")
# The unpatched poll: with a timeout of 0 it never blocks, so it need not yield to gevent.
_poll = monkey.get_original("select", "poll") if _HAS_POLL else None
_READABLE = (select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP) if _HAS_POLL else 0


def is_socket_alive(sock) -> bool:
    """True when an idle kept-alive socket is still open and has nothing waiting on it."""
    if sock is None or _poll is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _poll()
        poller.register(fd, _READABLE)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def install() -> bool:
    """Make every geventhttpclient pool in this process check its sockets with poll().

    False (and nothing changed) where poll() does not exist or the pool has no such check, as
    in a geventhttpclient version that no longer needs this.
    """
    if _poll is None or not callable(getattr(ConnectionPool, "_is_socket_alive", None)):
        return False
    # Replaces a private method of geventhttpclient's pool on purpose (the module docstring says why).
    setattr(ConnectionPool, "_is_socket_alive", lambda _pool, sock: is_socket_alive(sock))  # noqa: B010
    return True

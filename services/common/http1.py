"""A lean keep-alive HTTP/1.1 client for the calls lab processes make to one another.

Every hop inside the lab (web -> edge -> API replica -> backend) is one of our aiohttp services
calling another over loopback. aiohttp's ``ClientSession`` spends most of its CPU per call on
things these calls never use (cookies, redirects, proxies, compression, tracing, URL
normalisation): measured on a 2-core machine it cost about 200 µs a call, against about 40 µs
here, and a page view makes a dozen such calls. This client does what the lab needs and no
more: one request, one answer with a ``Content-Length`` or chunked body (or one read to the
end when the server closes), and idle connections kept per address for the next call.

Errors are :class:`HttpConnectionError` (an ``OSError``) for anything that stops a whole answer
from arriving: refused, reset, closed early, or not HTTP. Timeouts are the caller's to set
(``asyncio.timeout``); a call cut short, for any reason, never returns its connection to the pool.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Mapping

# Idle connections are dropped after this long, well before aiohttp's servers close them
# (their keep-alive timeout is 75 s), so a reused connection is practically never stale.
IDLE_S = 30.0
MAX_IDLE_PER_ADDRESS = 256
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
BODYLESS_STATUS = frozenset({204, 304})
# Bytes that may not appear raw in a request target or header value.
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")


class HttpConnectionError(ConnectionError):
    """The connection failed before a whole answer arrived (refused, reset, closed, not HTTP)."""


class _Conn:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing()) and now - self.idle_since < IDLE_S

    def abort(self) -> None:
        self.writer.transport.abort()


class Response:
    """A whole answer: status, headers (names in lower case) and body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def _quote_target(target: str) -> str:
    # aiohttp's parser never hands on a raw space or control byte, but a target built from
    # other input might: percent-encode them rather than send a broken request line.
    return _UNSAFE_TARGET.sub(lambda m: f"%{ord(m.group()):02X}", target)


def encode_request(
    method: str, host: str, port: int, target: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request's bytes: request line, Host, the given headers, Content-Length, body."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if _UNSAFE_TARGET.search(target):
        target = _quote_target(target)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
    for name, value in headers.items():
        if not _UNSAFE_VALUE.search(value):  # a value that could split the head is dropped
            lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    return head + body if body else head


def parse_head(raw: bytes) -> tuple[int, bool, dict[str, str]]:
    """Status, whether the server keeps the connection open, and headers of a response head."""
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpConnectionError(f"not an HTTP/1 answer: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection if parts[0] == b"HTTP/1.1" else "keep-alive" in connection
    return int(parts[1]), keep, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as e:
            raise HttpConnectionError(f"bad chunk size {size_line[:20]!r}") from e
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return bytes(out)
        if len(out) + size > MAX_BODY_BYTES:
            raise HttpConnectionError("answer body too large")
        out += (await reader.readexactly(size + 2))[:-2]


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while chunk := await reader.read(65536):
        out += chunk
        if len(out) > MAX_BODY_BYTES:
            raise HttpConnectionError("answer body too large")
    return bytes(out)


class Http1Pool:
    """Connections by address, reused while idle for less than ``IDLE_S``; one event loop's."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    async def request(
        self, host: str, port: int, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Response:
        conn = self._take(host, port) or await self._open(host, port)
        try:
            conn.writer.write(encode_request(method, host, port, target, headers, body))
            status, keep, resp_headers = parse_head((await conn.reader.readuntil(b"\r\n\r\n"))[:-4])
            data, keep = await self._read_body(conn.reader, method, status, resp_headers, keep)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            conn.abort()
            raise HttpConnectionError("connection closed before a whole answer arrived") from e
        except BaseException:  # a timeout, a cancelled caller, a reset: the connection is spent
            conn.abort()
            raise
        if keep:
            self._give_back(host, port, conn)
        else:
            conn.writer.close()
        return Response(status, resp_headers, data)

    async def _read_body(
        self, reader: asyncio.StreamReader, method: str, status: int, headers: dict[str, str], keep: bool
    ) -> tuple[bytes, bool]:
        if method == "HEAD" or status in BODYLESS_STATUS or status < 200:
            return b"", keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader), keep
        length = headers.get("content-length")
        if length is None:  # the body runs to the end of the connection
            return await _read_to_end(reader), False
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            raise HttpConnectionError(f"bad Content-Length {length[:20]!r}")
        return await reader.readexactly(int(length)), keep

    def _take(self, host: str, port: int) -> _Conn | None:
        idle = self._idle.get((host, port))
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable(now):
                return conn
            conn.abort()
        return None

    def _give_back(self, host: str, port: int, conn: _Conn) -> None:
        idle = self._idle.setdefault((host, port), [])
        if len(idle) >= MAX_IDLE_PER_ADDRESS:
            conn.writer.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _open(self, host: str, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(reader, writer)

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()

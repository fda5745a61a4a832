"""The lab's own HTTP/1.1 client against servers that answer in every way HTTP allows, and
in ways it does not: bodies by length, by chunks and to the end; reuse of kept-alive
connections; answers cut short; not HTTP at all; and what it refuses to put on the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from services.common.http1 import Http1Pool, HttpConnectionError, encode_request

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A TCP server on loopback whose answer is whatever ``answer`` writes; counts connections."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                await self.answer(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Answer], Awaitable[tuple[RawServer, int]]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> tuple[RawServer, int]:
        raw = RawServer(answer)
        server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        servers.append(server)
        return raw, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def pool() -> AsyncIterator[Http1Pool]:
    p = Http1Pool()
    yield p
    await p.close()


def fixed(data: bytes, close: bool = False) -> Answer:
    async def answer(_reader, writer):
        writer.write(data)
        if close:
            writer.close()

    return answer


async def test_a_length_delimited_answer_is_read_whole_and_its_connection_reused(raw_server, pool):
    raw, port = await raw_server(
        fixed(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": 1}\r\n')
    )
    for _ in range(3):
        resp = await pool.request("127.0.0.1", port, "GET", "/x?a=1", {"X-Client": "app"})
        assert (resp.status, resp.body, resp.headers["content-type"]) == (200, b'{"ok": 1}\r\n', "application/json")
    assert raw.connections == 1
    assert raw.requests[0].startswith(b"GET /x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-Client: app\r\n" in raw.requests[0]


async def test_a_chunked_answer_is_joined(raw_server, pool):
    _, port = await raw_server(
        fixed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
    )
    resp = await pool.request("127.0.0.1", port, "GET", "/", {})
    assert resp.body == b"hello, world"
    again = await pool.request("127.0.0.1", port, "GET", "/", {})  # the connection was left clean
    assert again.body == b"hello, world"


async def test_an_answer_without_length_runs_to_the_close_and_is_not_reused(raw_server, pool):
    raw, port = await raw_server(fixed(b"HTTP/1.1 200 OK\r\n\r\nall of it", close=True))
    for _ in range(2):
        resp = await pool.request("127.0.0.1", port, "GET", "/", {})
        assert resp.body == b"all of it"
    assert raw.connections == 2


async def test_connection_close_is_honoured(raw_server, pool):
    raw, port = await raw_server(
        fixed(b"HTTP/1.1 503 Over capacity\r\nConnection: close\r\nContent-Length: 2\r\nRetry-After: 3\r\n\r\n{}")
    )
    for _ in range(2):
        resp = await pool.request("127.0.0.1", port, "POST", "/", {}, b'{"a": 1}')
        assert (resp.status, resp.headers["retry-after"]) == (503, "3")
    assert raw.connections == 2
    assert raw.requests[0].endswith(b'Content-Length: 8\r\n\r\n{"a": 1}')


async def test_an_answer_cut_short_is_a_connection_error(raw_server, pool):
    _, port = await raw_server(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", close=True))
    with pytest.raises(HttpConnectionError):
        await pool.request("127.0.0.1", port, "GET", "/", {})


async def test_a_reset_before_any_answer_is_a_connection_error(raw_server, pool):
    async def reset(_reader, writer):
        writer.transport.abort()

    _, port = await raw_server(reset)
    with pytest.raises(ConnectionError):
        await pool.request("127.0.0.1", port, "GET", "/", {})


async def test_something_that_is_not_http_is_refused(raw_server, pool):
    _, port = await raw_server(fixed(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    with pytest.raises(HttpConnectionError, match="not an HTTP/1 answer"):
        await pool.request("127.0.0.1", port, "GET", "/", {})


async def test_nobody_listening_is_a_connection_error(pool):
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(OSError):
        await pool.request("127.0.0.1", port, "GET", "/", {})


async def test_a_call_cut_by_its_timeout_never_hands_its_connection_to_the_next_call(raw_server, pool):
    calls = 0

    async def slow_first(_reader, writer):
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.3)  # answers after the caller gave up: the next call must not read it
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")

    raw, port = await raw_server(slow_first)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await pool.request("127.0.0.1", port, "GET", "/", {})
    resp = await pool.request("127.0.0.1", port, "GET", "/", {})
    assert resp.body == b"fresh" and raw.connections == 2


async def test_an_aiohttp_server_is_called_over_one_kept_alive_connection(pool, unused_tcp_port):
    seen_peers = set()

    async def echo(request: web.Request) -> web.Response:
        seen_peers.add(request.transport.get_extra_info("peername"))
        return web.json_response(
            {
                "path": request.rel_url.raw_path,
                "query": request.rel_url.raw_query_string,
                "body": (await request.read()).decode(),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        resp = await pool.request(
            "127.0.0.1",
            unused_tcp_port,
            "POST",
            "/a%2Fb/%E2%9C%93?q=x%20y&r=1",
            {"Content-Type": "application/json"},
            b'{"t": "\xe2\x9c\x93"}',
        )
        assert resp.status == 200
        echoed = json.loads(resp.body)
        assert echoed == {"path": "/a%2Fb/%E2%9C%93", "query": "q=x%20y&r=1", "body": '{"t": "\u2713"}'}
        for _ in range(5):
            assert (await pool.request("127.0.0.1", unused_tcp_port, "GET", "/", {})).status == 200
        assert len(seen_peers) == 1
    finally:
        await runner.cleanup()


def test_a_header_value_that_could_split_the_request_is_dropped():
    raw = encode_request("GET", "127.0.0.1", 80, "/", {"User-Agent": "ok", "X-Evil": "a\r\nX-Injected: 1"}, None)
    assert b"User-Agent: ok" in raw and b"X-Injected" not in raw and b"X-Evil" not in raw


def test_a_raw_space_in_the_target_is_percent_encoded_and_ipv6_hosts_are_bracketed():
    raw = encode_request("GET", "::1", 8080, "/a b\x7f", {}, None)
    assert raw.startswith(b"GET /a%20b%7F HTTP/1.1\r\nHost: [::1]:8080\r\n")


def test_a_post_without_a_body_says_so():
    assert b"Content-Length: 0\r\n" in encode_request("POST", "127.0.0.1", 80, "/", {}, None)
    assert b"Content-Length" not in encode_request("GET", "127.0.0.1", 80, "/", {}, None)

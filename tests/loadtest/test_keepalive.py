"""A busy load generator keeps its connections: FastHttpUser's client, past 1,024 open sockets.

Each check runs in a child Python: importing Locust monkey-patches the whole process for gevent,
which the rest of the suite (asyncio) must not inherit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A gevent HTTP server and a FastHttpSession in one process that holds 1,100 spare sockets, so
# every connection the client opens gets a descriptor above 1023. It prints how many TCP
# connections the server accepted for 20 sequential requests.
CHILD = r"""
from gevent import monkey; monkey.patch_all()
import json, socket, sys
sys.path.insert(0, sys.argv[1])
from gevent.server import StreamServer
from locust.env import Environment
from locust.contrib.fasthttp import FastHttpSession
from loadtest import keepalive

installed = keepalive.install() if sys.argv[2] == "install" else None
spare = [socket.socket() for _ in range(1100)]
accepted = []

def handle(conn, _addr):
    accepted.append(1)
    f = conn.makefile("rb")
    while True:
        line = f.readline()
        if not line:
            return
        while f.readline() not in (b"\r\n", b""):
            pass
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

server = StreamServer(("127.0.0.1", 0), handle)
server.start()
session = FastHttpSession(f"http://127.0.0.1:{server.server_port}", Environment().events.request, None)
statuses = [session.get("/").status_code for _ in range(20)]
print(json.dumps({"installed": installed, "accepted": len(accepted), "statuses": sorted(set(statuses))}))
"""


def connections_for_20_requests(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_twenty_requests_reuse_one_connection_past_1024_sockets():
    seen = connections_for_20_requests("install")
    assert seen["installed"] is True
    assert seen["statuses"] == [200]
    assert seen["accepted"] == 1


def test_without_the_fix_the_client_reconnects_every_time():
    """Why loadtest.keepalive exists: once this fails, geventhttpclient no longer needs it."""
    seen = connections_for_20_requests("plain")
    assert seen["statuses"] == [200]
    assert seen["accepted"] >= 19

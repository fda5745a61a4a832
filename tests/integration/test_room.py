"""A workshop room reached from a participant's laptop: another network namespace, on a bridge to
the facilitator's machine. With the room's link it gets the dashboard (live data included) and
the levers; without the token, nothing; and no backend, Prometheus or control plane at all."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from chaos.lab.ports import free_ports
from services.config import load_lab_config
from tests.integration.conftest import write_lab_config
from tests.integration.netns import Network, NoNamespaces
from tests.integration.test_failwhale_up import lab_pids

pytestmark = pytest.mark.integration

FAILWHALE = [sys.executable, "-m", "chaos.cli"]

# What the laptop does: everything a participant's browser would, and what an attacker on the
# room's network would try. Prints one JSON object of what it saw.
LAPTOP = r"""
import json, socket, sys, urllib.request, urllib.error
link, token, root, ports = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
base = link.split("/levers.html")[0]
seen = {}

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None

def get(path, headers=None, data=None, method=None):
    req = urllib.request.Request(base + path, headers=headers or {}, data=data, method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()

status, headers, _ = get(link[len(base):].split("#")[0])
seen["link"] = status
cookie = headers.get("Set-Cookie", "").split(";")[0]
with_cookie = {"Cookie": cookie}
seen["levers_page"] = get("/levers.html", with_cookie)[0]
seen["dashboard_page"] = get("/", with_cookie)[0]
seen["panels"] = get("/panels.json", with_cookie)[0]
status, _, body = get("/api/v1/query?query=up", with_cookie)
seen["query"] = (status, json.loads(body).get("status"))
seen["without_token"] = [get(p)[0] for p in ("/", "/levers.html", "/panels.json", "/api/v1/query?query=up")]
pull = json.dumps({"who": "laptop", "severity": "SEV2"}).encode()
auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
seen["declare"] = get("/levers/declare", auth, pull, "POST")[0]
seen["end"] = get("/levers/end", auth, b"{}", "POST")[0]
reached = []
for name, port in ports.items():
    for host in (root, "127.0.0.1"):
        try:
            socket.create_connection((host, port), timeout=2).close()
            reached.append(f"{name} at {host}:{port}")
        except OSError:
            pass
seen["reached"] = reached
print(json.dumps(seen))
"""


def test_a_participant_laptop_reaches_the_room_with_its_token_and_nothing_else(tmp_path):
    try:
        net = Network(1).__enter__()
    except NoNamespaces as e:
        pytest.skip(f"network namespaces cannot be created here: {e}")
    game = None
    try:
        config = write_lab_config(tmp_path)
        lab = load_lab_config(config)
        room_port = free_ports(1)[0]
        game = subprocess.Popen(
            [*FAILWHALE, "workshop", "start", "--seed", "3", "--quick", "--scale", "1", "--for", "120"]
            + ["--room", f"{net.root_address}:{room_port}", "--config", str(config), "--out", str(tmp_path / "out")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        link, said = None, []
        deadline = time.monotonic() + 60
        while link is None and time.monotonic() < deadline:
            line = game.stdout.readline()
            assert line, "".join(said)
            said.append(line)
            if m := re.search(r"participants open (\S+)", line):
                link = m.group(1)
        assert link is not None and link.startswith(f"http://{net.root_address}:{room_port}/"), "".join(said)
        token = (lab.data_path / "workshop" / "token").read_text().strip()
        qr = game.stdout.readline()  # the link as a QR code follows it
        assert set(qr) & {"█", "▀", "▄"}, qr

        laptop = net.hosts[0]
        seen = json.loads(
            subprocess.run(
                ["ip", "netns", "exec", laptop.ns, sys.executable, "-c", LAPTOP, link, token, net.root_address]
                + [json.dumps(lab.ports)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        assert seen["link"] == 303
        assert seen["levers_page"] == seen["dashboard_page"] == seen["panels"] == 200
        assert seen["query"] == [200, "success"]  # the dashboard's live data, through the room
        assert seen["without_token"] == [401, 401, 401, 401]
        assert seen["declare"] == 200 and seen["end"] == 403
        assert seen["reached"] == []  # no backend, Prometheus, control plane or local lever server

        ended = subprocess.run([*FAILWHALE, "workshop", "end", "--config", str(config)], capture_output=True, text=True)
        assert ended.returncode == 0, ended.stdout + ended.stderr
        game.communicate(timeout=120)
        assert game.returncode == 0
    finally:
        if game is not None and game.poll() is None:
            game.send_signal(signal.SIGINT)
            game.communicate(timeout=60)
        net.__exit__(None, None, None)
    assert net.leftovers() == []
    assert lab_pids(str(tmp_path)) == []

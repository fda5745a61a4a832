"""The workshop room: the dashboard and the levers for participants' own browsers, every request
behind the room's token, the game's end kept for the facilitator, and an address that names one
interface of this machine."""

from __future__ import annotations

import aiohttp
import pytest

from chaos.lab.ports import free_ports
from chaos.workshop.actions import Levers
from chaos.workshop.room import WorkshopError, parse_room, qr_text, room_url
from chaos.workshop.server import ROOM_COOKIE, room_app
from tests.chaos.workshop.conftest import FakeRun
from tests.conftest import LabServer


@pytest.fixture
async def room(tmp_path):
    port = free_ports(1)[0]
    app = room_app(Levers(FakeRun(tmp_path)), "sesame", "http://127.0.0.1:9", ("127.0.0.1", port))
    server = LabServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    yield f"http://127.0.0.1:{port}"
    await server.close()


@pytest.mark.parametrize("path", ["/", "/levers.html", "/levers", "/panels.json", "/api/v1/query?query=up"])
async def test_without_the_token_nothing_is_served(room, http, path):
    async with http.get(room + path) as resp:
        assert resp.status == 401 and "needs its token" in (await resp.json())["error"]
    async with http.get(room + path, cookies={ROOM_COOKIE: "guess"}) as resp:
        assert resp.status == 401


async def test_the_link_sets_the_token_as_a_cookie_for_the_page_and_the_dashboards_queries(room):
    # Keeps cookies as a browser does (aiohttp keeps none for an IP address unless told to).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{room}/levers.html?token=sesame", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/levers.html"
            cookie = resp.cookies[ROOM_COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Lax"
        async with browser.get(f"{room}/levers.html") as resp:
            assert resp.status == 200 and "workshop token" in await resp.text()
        async with browser.get(f"{room}/levers") as resp:
            assert resp.status == 200 and (await resp.json())["dashboard"] == "/"
        async with browser.get(f"{room}/panels.json") as resp:
            assert resp.status == 200 and (await resp.json())["panels"]
        async with browser.get(f"{room}/") as resp:
            assert resp.status == 200 and "<html" in (await resp.text()).lower()


async def test_a_cookie_alone_pulls_no_lever_and_nobody_ends_the_game_from_the_room(room, http):
    cookies = {ROOM_COOKIE: "sesame"}
    async with http.post(f"{room}/levers/declare", json={"severity": "SEV2"}, cookies=cookies) as resp:
        assert resp.status == 401 and "workshop token" in (await resp.json())["error"]
    async with http.post(f"{room}/levers/end", json={}, headers={"Authorization": "Bearer sesame"}) as resp:
        assert resp.status == 403 and "only the facilitator ends the game" in (await resp.json())["error"]


async def test_the_room_answers_only_its_own_address(room, http):
    auth = {"Authorization": "Bearer sesame"}
    async with http.get(f"{room}/levers", headers={**auth, "Host": "rebind.example"}) as resp:
        assert resp.status == 421


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("10.0.0.5", ("10.0.0.5", 18093)),
        ("10.0.0.5:19000", ("10.0.0.5", 19000)),
        ("[fd00::5]:19000", ("fd00::5", 19000)),
    ],
)
def test_a_room_address_is_a_host_and_a_port(given, parsed):
    assert parse_room(given, 18093) == parsed


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("0.0.0.0", "not every interface"),
        ("::", "not every interface"),
        ("[::]:19000", "not every interface"),
        ("room.example:19000", "is not an IP address of this machine"),
        ("10.0.0.5:http", "the port must be a number"),
        ("10.0.0.5:80", "between 1024 and 65535"),
    ],
)
def test_a_bad_room_address_is_one_line(given, says):
    with pytest.raises(WorkshopError, match=says) as info:
        parse_room(given, 18093)
    assert str(info.value).startswith(f"--room {given}: ") and "\n" not in str(info.value)


def test_the_link_carries_the_token_and_draws_as_a_qr_code():
    link = room_url(("10.0.0.5", 18093), "sesame")
    assert link == "http://10.0.0.5:18093/levers.html?token=sesame#token=sesame"
    code = qr_text(link)
    assert len(code.splitlines()) > 10 and {"█", "▀", "▄"} & set(code)


def test_workshop_start_refuses_every_interface_before_anything_starts(tmp_path, capsys):
    from chaos.cli import main
    from chaos.lab.ports import free_port_lab_config

    config = free_port_lab_config(tmp_path)
    assert (
        main(["workshop", "start", "--room", "0.0.0.0", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    )
    out, err = capsys.readouterr()
    assert out == "" and err == "error: --room 0.0.0.0: name one address of this machine, not every interface\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()

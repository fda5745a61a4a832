"""Fixtures of the workshop's tests: a game's run without a lab, and a lever server on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.lab.ports import free_ports
from chaos.records import Journal
from chaos.workshop.actions import Levers
from chaos.workshop.server import lever_app
from tests.conftest import LabServer


class FakeRun:
    """Just what the lever server reads before it acts, as the game and its run: no lab, so every
    real lever waits."""

    def __init__(self, tmp_path: Path) -> None:
        self.runner = self  # the game's run
        self.journal = Journal(tmp_path / "journal.json", "workshop")
        self.t0, self.speed = None, 2.0
        self.run_dir = tmp_path
        self.control = None
        self.rolling_out, self.rollout_paused, self.rollout_stopped = None, False, False

    def say(self, _msg: str) -> None:
        pass


@pytest.fixture
async def lever_server(tmp_path):
    levers = Levers(FakeRun(tmp_path))
    levers.runner.over = levers.ended.is_set
    server = LabServer(
        lever_app(levers, "sesame", facilitator_token="open-sesame"), host="127.0.0.1", port=free_ports(1)[0]
    )
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}", levers
    await server.close()

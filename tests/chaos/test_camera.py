"""The run's camera: without a browser a run goes on, and says why there are no photographs."""

from __future__ import annotations

import threading
import time

from chaos import camera


def test_without_chromium_the_camera_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMIUM_BIN", str(tmp_path / "no-such-browser"))
    assert camera.available() == "Chromium is not installed (failwhale setup --browser)"


def test_a_camera_stopped_before_its_moment_takes_no_photograph(tmp_path):
    assert camera.available() is None, "`make test` installs Chromium (failwhale setup --browser)"
    said: list[str] = []
    stop = threading.Event()
    cam = camera.Camera("http://127.0.0.1:9/", "http://127.0.0.1:9/", tmp_path / "photos", said.append, stop)
    cam.schedule([("later", 3600.0)], time.time(), 1.0)
    stop.set()
    assert cam.finish(timeout_s=20) == []
    assert not (tmp_path / "photos").exists()
    assert said == []

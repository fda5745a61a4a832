"""Photographs of the live dashboard and of the website during a run, by a real headless Chromium.

At chosen moments of a scenario (late in each phase) the camera opens the dashboard the lab
serves, waits until every panel has answered, saves a full-page screenshot in the run folder
and reads what the page shows from its DOM (the data attributes the page keeps for this): each
chart's latest values, the status tile's colour, the firing alerts. It also opens the desktop
site as a new visitor would, and keeps what that visitor saw (a timeline, or the error
message). The report links the screenshots; the summary keeps the readings, so a test can
check what a person would have seen.

A missing browser or Playwright is not an error: the run goes on without photographs and says
so once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.lab.provision import find_browser
from chaos.records import DashboardPhoto, Shot, SitePhoto, SiteVisit

# Chromium otherwise keeps trying to reach Google's services, which the lab never allows.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
READY_TIMEOUT_MS = 15_000
# New visitors per photograph of the site: one visit can be lucky in a partial outage.
SITE_VISITS = 3

# What the page shows, read from the DOM contract of dashboards/static/dashboard.js.
READ_PAGE = """() => {
  const panels = {};
  for (const s of document.querySelectorAll('section.panel')) {
    const d = {...s.dataset};
    if (d.last) { try { d.last = JSON.parse(d.last); } catch (e) {} }
    d.rows_text = [...s.querySelectorAll('tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' ').trim());
    panels[s.dataset.panel] = d;
  }
  return {body: {...document.body.dataset}, panels,
          scenario_clock: (document.querySelector('#clock-scenario') || {}).innerText || null};
}"""


def available() -> str | None:
    """Why photographs cannot be taken here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    if find_browser() is None:
        return "Chromium is not installed (failwhale setup --browser)"
    return None


READ_SITE = """() => ({state: document.body.dataset.state,
  message: ((document.querySelector('#error') || {}).innerText || '').trim(),
  tweets: document.querySelectorAll('#timeline .tweet').length})"""


def _dashboard(browser: Any, url: str, path: Path, scenario_time: Callable[[float], float]) -> DashboardPhoto:
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url, wait_until="load")
        page.wait_for_selector("body[data-state=ready]", timeout=READY_TIMEOUT_MS)
        reading, wall = page.evaluate(READ_PAGE), time.time()
        page.screenshot(path=str(path), full_page=True)
        return DashboardPhoto(file=f"{path.parent.name}/{path.name}", at=scenario_time(wall), **reading)
    finally:
        page.close()


def _site(browser: Any, url: str, path: Path, scenario_time: Callable[[float], float]) -> SitePhoto:
    """New visitors (no cookies, no storage) opening the site one after another."""
    visits = []
    for i in range(SITE_VISITS):
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.goto(url, wait_until="load")
            page.wait_for_selector("body[data-state=ready], body[data-state=error]", timeout=READY_TIMEOUT_MS)
            visit = SiteVisit(**page.evaluate(READ_SITE), at=scenario_time(time.time()))
            if visit.state != "error":
                visit.message = None  # the hidden error element's text, not shown
            visits.append(visit)
            if i == 0:
                page.screenshot(path=str(path), full_page=True)
        finally:
            context.close()
    return SitePhoto(file=f"{path.parent.name}/{path.name}", visits=visits)


class Camera:
    """One headless Chromium for the whole run, on its own thread, photographing on cue.

    The browser starts with the camera (before the timeline), so a photograph shows its moment
    and not the seconds a browser takes to start; between photographs it holds no page and
    costs nothing.
    """

    def __init__(
        self, dashboard_url: str, site_url: str, out: Path, say: Callable[[str], None], stop: threading.Event
    ) -> None:
        self.dashboard_url, self.site_url, self.out, self.say, self.stop = dashboard_url, site_url, out, say, stop
        self.shots: list[Shot] = []
        self._cues: queue.Queue[tuple[str, float, float, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def schedule(self, moments: list[tuple[str, float]], t0: float, speed: float) -> None:
        """Photograph at each (name, scenario seconds), in time order, unless ``stop`` is set first."""
        for name, at in sorted(moments, key=lambda m: m[1]):
            self._cues.put((name, at, t0, speed))

    def finish(self, timeout_s: float = 30.0) -> list[Shot]:
        """Let a photograph in progress end (later ones are dropped once ``stop`` is set); the shots."""
        self._cues.put(None)
        self._thread.join(timeout_s)
        return list(self.shots)

    def _run(self) -> None:
        from playwright.sync_api import Error, sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(find_browser()), args=CHROMIUM_ARGS)
                try:
                    while (cue := self._cues.get()) is not None:
                        name, at, t0, speed = cue
                        if self.stop.wait(max(0.0, t0 + at / speed - time.time())):
                            break
                        self.shots.append(self._shoot(browser, name, at, t0, speed))
                finally:
                    browser.close()
        except Error as e:
            self.say(f"no dashboard photographs: the browser failed: {str(e).splitlines()[0]}")

    def _shoot(self, browser: Any, name: str, at: float, t0: float, speed: float) -> Shot:
        from playwright.sync_api import Error

        self.out.mkdir(parents=True, exist_ok=True)

        def scenario_time(wall: float) -> float:
            return round((wall - t0) * speed, 1)

        shot = Shot(name=name, planned_at=at)
        # The site first: its visits are quick when it works, and a short phase (a quick run's
        # baseline lasts two seconds) may be over soon.
        try:
            shot.site = _site(browser, self.site_url, self.out / f"site-{name}.png", scenario_time)
        except Error as e:
            shot.site = SitePhoto(error=str(e).splitlines()[0])
            self.say(f"photograph of the site ({name}) failed: {shot.site.error}")
        try:
            shot.dashboard = _dashboard(browser, self.dashboard_url, self.out / f"dashboard-{name}.png", scenario_time)
        except Error as e:
            shot.dashboard = DashboardPhoto(error=str(e).splitlines()[0])
            self.say(f"photograph of the dashboard ({name}) failed: {shot.dashboard.error}")
        shot.at = shot.dashboard.at if shot.dashboard.at is not None else scenario_time(time.time())
        return shot

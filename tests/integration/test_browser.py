"""The desktop site in a real browser (Debian's Chromium, headless) against the whole lab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lab.provision import find_browser
from services.web.pages import load_manifest
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = ROOT / "test-artifacts"
# Without these, Chromium keeps trying to reach Google's services, which this lab never allows.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    binary = find_browser()
    if binary is None:
        pytest.fail("Chromium is not installed: `make test` installs it (failwhale setup --browser)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(binary), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_page_renders_timeline_then_dont_fret_when_timeline_is_down(lab, page):
    message = load_manifest().error_message
    assert message == "Something went wrong, but don't fret \u2014 it's not your fault. Let's try again."

    page.goto(lab.url("web") + "/")
    page.wait_for_selector("body[data-state=ready]", timeout=10_000)
    assert page.locator("#timeline .tweet").count() >= 5
    assert "just setting up my twttr" in page.locator("#timeline").inner_text()
    shot(page, "web-page-healthy")

    lab.stop_instance("timeline")
    try:
        page.reload()
        page.wait_for_selector("body[data-state=error]", timeout=10_000)
        assert page.locator("#error").inner_text().strip() == message
        assert page.locator("#timeline .tweet").count() == 0
        assert page.locator("#retry").is_visible()
        shot(page, "web-page-timeline-down")
    finally:
        lab.start_instance("timeline")

    # The retry button runs the whole page view again; with the backend back it renders.
    page.click("#retry")
    page.wait_for_selector("body[data-state=ready]", timeout=10_000)
    assert page.locator("#timeline .tweet").count() >= 5


def test_login_then_post_a_tweet_from_the_page(lab, page):
    page.goto(lab.url("web") + "/")
    page.wait_for_selector("body[data-state=ready]", timeout=10_000)
    page.fill("#login-form [name=username]", "user0123")
    page.fill("#login-form [name=password]", "failwhale")
    page.click("#login-form button")
    page.wait_for_selector("#compose textarea", state="visible", timeout=10_000)
    page.wait_for_selector("body[data-state=ready]", timeout=10_000)
    page.fill("#compose textarea", "posted from a real browser #failwhale")
    page.click("#compose button")
    page.wait_for_function(
        "document.querySelector('#timeline').innerText.includes('posted from a real browser')", timeout=10_000
    )
    assert "@user0123" in page.locator("#timeline").inner_text()
    shot(page, "web-page-after-post")

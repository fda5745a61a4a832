"""The dashboards against a real lab under load: every query answers, nothing pages, and the
built-in dashboard draws real data in a real browser."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from chaos.control import LabControl
from chaos.lab.provision import find_promtool
from chaos.lab.supervisor import Lab, LoadOptions
from chaos.rollout import rollback, rollout
from dashboards.spec import RULES_FILE, default_spec
from services.architecture import load_architecture
from services.config import load_lab_config
from tests.conftest import ROOT
from tests.integration.conftest import prom_query, write_lab_config
from tests.integration.test_browser import browser, page, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration
SPEC = default_spec()
# The longest rule window is 2 minutes, but every rule has data once two samples of its inputs do:
# at most this long after the load starts.
SETTLE_S = 40
# The live chart must have more than ten points to draw (test_the_built_in_dashboard_draws_live_data).
HISTORY_S = 20


@pytest.fixture(scope="module")
def busy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A healthy lab with a steady load, settled long enough for every rate window to fill."""
    folder = tmp_path_factory.mktemp("dash")
    cfg = load_lab_config(write_lab_config(folder))
    with Lab(cfg, load_architecture(cfg.architecture_path)) as lab:
        lab.start_load(LoadOptions(peak_users=20, web_share=0.5, shape="constant", duration_s=150))
        # Settled once every panel and every rule has data and the charts have HISTORY_S of it to
        # draw (SETTLE_S bounds the wait: the tests below say which one never got any).
        started = time.monotonic()
        waiting = [expr for _, expr in BASELINE_QUERIES] + RECORDS
        while (waiting or time.monotonic() - started < HISTORY_S) and time.monotonic() - started < SETTLE_S:
            waiting = [expr for expr in waiting if not query(lab, expr)]
            time.sleep(1)
        yield lab


def query(lab: Lab, promql: str) -> list[dict]:
    return prom_query(lab, promql, through="dashboard")


BASELINE_QUERIES = [(p.id, q.expr) for p in SPEC.panels if p.baseline for q in p.queries]
QUIET_QUERIES = [(p.id, q.expr) for p in SPEC.panels if not p.baseline for q in p.queries]
RULES = [r["record"] for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"] if "record" in r]
# Recorded only in the seconds after an API replica changes architecture.
AFTER_A_SWAP = ["failwhale:api_errors:ratio_rate15s_before_swap"]
RECORDS = [r for r in RULES if r not in AFTER_A_SWAP]


@pytest.mark.parametrize(("panel", "expr"), BASELINE_QUERIES, ids=[p for p, _ in BASELINE_QUERIES])
def test_every_panel_has_data_on_a_healthy_lab(busy_lab, panel, expr):
    assert query(busy_lab, expr), f"panel {panel}: no series for {expr}"


@pytest.mark.parametrize("record", RECORDS)
def test_every_recording_rule_has_data_on_a_healthy_lab(busy_lab, record):
    result = query(busy_lab, record)
    assert result, f"{record} is empty"
    # Whole-tier and per-client shares are low on a healthy lab (per route, a single error in a
    # quiet window can be a large share, so those are only checked for data).
    if record.startswith(("client:failwhale_journeys_failed", "failwhale:api_errors")):
        assert all(float(s["value"][1]) < 0.05 for s in result), result


def test_rules_about_swaps_are_empty_when_nothing_swapped(busy_lab):
    for record in AFTER_A_SWAP:
        assert query(busy_lab, record) == [], record


def test_panels_that_are_quiet_by_design_are_valid_and_quiet(busy_lab):
    for panel, expr in QUIET_QUERIES:
        if panel == "journey_problems":
            continue  # a journey can fail now and then on a healthy lab (a timeout); the query must still answer
        assert query(busy_lab, expr) == [], f"panel {panel} has data on a healthy lab: {expr}"
    assert query(busy_lab, 'ALERTS{alertstate="firing"}') == []


def test_the_rules_are_loaded_and_healthy(busy_lab):
    with urllib.request.urlopen(f"{busy_lab.url('prometheus')}/api/v1/rules", timeout=5) as resp:
        groups = json.load(resp)["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} == {"JourneyErrorBudgetBurn", "RolloutErrorsRising"}
    assert all(r["health"] == "ok" for r in rules), [
        (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"
    ]


def test_the_generated_prometheus_config_passes_promtool(busy_lab):
    promtool = find_promtool()
    assert promtool is not None, "promtool not found: `make test` installs Prometheus with it"
    config = busy_lab.lab.data_path / "prometheus" / "prometheus.yml"
    result = subprocess.run([str(promtool), "check", "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(RULES_FILE) in config.read_text()


@pytest.mark.browser
def test_the_built_in_dashboard_draws_live_data(busy_lab, page):  # noqa: F811
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{busy_lab.url('dashboard')}/?board=overview")
    page.wait_for_selector("body[data-state=ready]", timeout=15_000)
    page.wait_for_function("Number(document.body.dataset.refreshes) >= 2", timeout=15_000)
    success = page.locator("#panel-journey_success")
    assert int(success.get_attribute("data-points")) > 10
    last = json.loads(success.get_attribute("data-last"))
    assert set(last) == {"web", "app"} and min(last.values()) > 0.9, last
    status = page.locator("#panel-status_page")
    assert status.get_attribute("data-color") == "green"
    assert status.get_attribute("data-text") == "All systems operational"
    assert page.locator("#panel-api_versions").get_attribute("data-rows") == "4"
    assert page.locator("#panel-firing_alerts").get_attribute("data-rows") == "0"
    # No scenario plays, so there is no scenario time to show, and no scenario is named.
    assert "no scenario" in page.locator("#clock-scenario").inner_text()
    shot(page, "dashboard-healthy")
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize("board", [b.id for b in SPEC.dashboards])
def test_every_board_renders_every_panel(busy_lab, page, board):  # noqa: F811
    page.goto(f"{busy_lab.url('dashboard')}/?board={board}")
    page.wait_for_selector("body[data-state=ready]", timeout=15_000)
    shown = page.eval_on_selector_all("section.panel", "els => els.map(e => e.dataset.panel)")
    assert shown == [p.id for p in SPEC.panels_of(board)]
    assert SPEC.board(board).title in page.locator("body").inner_text()
    shot(page, f"dashboard-{board}")


def in_thread(coro):
    """Run a coroutine to its end; on a thread of its own, because the browser fixture's
    Playwright keeps an event loop running on this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_an_architecture_change_is_marked_on_the_charts(busy_lab):
    """Last in this module: it changes the lab. The rollout annotation sees one replica move."""
    new = load_architecture(ROOT / "services" / "architecture" / "v2.yaml")
    control = LabControl.connect(busy_lab.lab, busy_lab.arch)
    (mark,) = [a for a in SPEC.annotations if a.id == "rollout"]
    in_thread(rollout(control, new, [["api-1"]], bake_s=0, guard=None, prometheus_url=busy_lab.url("prometheus")))
    try:
        deadline = time.monotonic() + 10
        while not (result := query(busy_lab, mark.expr)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [s["metric"] for s in result] == [{"version": new.version}]
    finally:
        assert in_thread(rollback(control)) == []

"""Locust's two cohorts against the real lab, recorded by the real Prometheus.

Each test starts its own lab (fresh Prometheus data) and a short, bounded Locust run.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lab.supervisor import DEFAULT_SPAWN_PER_S, Lab, LoadOptions
from loadtest.ledger import read_ledger
from services.architecture import load_architecture
from services.config import load_lab_config
from services.tweets.store import db_path, stored_ids
from tests.integration.conftest import prom_query, wait_for_query, write_lab_config

pytestmark = pytest.mark.integration

USERS = 16


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Lab]:
    cfg = load_lab_config(write_lab_config(tmp_path))
    with Lab(cfg, load_architecture(cfg.architecture_path)) as lab:
        yield lab


def journeys(lab: Lab, at_end: bool = True, match: str = "") -> dict[str, dict[str, float]]:
    """Journeys by client and outcome as Prometheus has them (the last scrape, even after Locust exits)."""
    series = f"failwhale_journeys_total{{{match}}}"
    expr = f"last_over_time({series}[10m])" if at_end else series
    out: dict[str, dict[str, float]] = {"web": {}, "app": {}}
    for s in prom_query(lab, f"sum by (client, outcome) ({expr})"):
        out[s["metric"]["client"]][s["metric"]["outcome"]] = float(s["value"][1])
    return out


def reports(lab: Lab) -> dict[str, float]:
    result = prom_query(lab, "sum by (category) (last_over_time(failwhale_user_reports_total[10m]))")
    return {s["metric"]["category"]: float(s["value"][1]) for s in result}


def ratio(counts: dict[str, float], outcome: str) -> float:
    total = sum(counts.values())
    return counts.get(outcome, 0.0) / total if total else float("nan")


def minus(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {c: {o: a[c].get(o, 0.0) - b[c].get(o, 0.0) for o in a[c]} for c in a}


def run(lab: Lab, run_dir: Path, duration: float, **kw) -> int:
    opts = LoadOptions(headless=True, peak_users=USERS, web_share=0.5, shape="constant", duration_s=duration, **kw)
    lab.start_load(opts, run_dir)
    return lab.wait_load(duration + 45)


def locust_journey_count(run_dir: Path) -> int:
    with (run_dir / "locust_stats.csv").open() as f:
        return sum(int(row["Request Count"]) for row in csv.DictReader(f) if row["Type"] == "JOURNEY")


def test_healthy_lab_both_cohorts_ok_every_acked_tweet_stored_and_two_workers_sum_correctly(fresh_lab, tmp_path):
    # Two worker processes, as a lab spread over hosts runs them: whatever one worker counted or
    # posted must be in the sums and the ledger as surely as with one.
    run_dir = tmp_path / "run"
    run(fresh_lab, run_dir, duration=15, workers=2)
    counts = journeys(fresh_lab)
    for client in ("web", "app"):
        assert sum(counts[client].values()) >= 20, counts
        assert ratio(counts[client], "ok") >= 0.99, counts
    assert sum(reports(fresh_lab).values()) == 0  # nobody reports a service that works

    acked = read_ledger(run_dir / "ledger")
    assert acked, "the run should have posted tweets"
    stored = stored_ids(db_path(fresh_lab.lab.data_path, "tweets"))
    assert set(acked) <= stored, f"acknowledged but lost: {sorted(set(acked) - stored)}"

    # Prometheus holds exactly what Locust itself counted over both workers, and all the users.
    assert sum(sum(c.values()) for c in counts.values()) == locust_journey_count(run_dir)
    users = prom_query(fresh_lab, "max_over_time(sum(failwhale_loadgen_users)[10m:1s])")
    assert float(users[0]["value"][1]) == USERS


# Journeys that read timelines (page views, app refreshes); posting a tweet never needs the
# timeline backend and rightly keeps working while it is down.
READS = 'journey!="post_tweet"'


def outage_window(lab: Lab, run_dir: Path, **kw) -> dict[str, dict[str, float]]:
    """Warm up on a healthy lab, stop the timeline backend, and count reading journeys while it is down."""
    warmup, outage = 8.0, 14.0
    opts = LoadOptions(
        headless=True,
        peak_users=USERS * SCALE,
        web_share=0.5,
        shape="constant",
        duration_s=warmup + outage,
        spawn_per_s=DEFAULT_SPAWN_PER_S * SCALE,
        **kw,
    )
    lab.start_load(opts, run_dir)
    time.sleep(warmup)
    before = wait_for_query(lab, "sum(failwhale_journeys_total)", lambda r: bool(r))
    assert before, "no journeys recorded during warm-up"
    lab.stop_instance("timeline")
    # Count from when the outage is in force: views begun while the backend was up end first,
    # and Prometheus scrapes what they did.
    time.sleep(3)
    start = journeys(lab, at_end=False, match=READS)
    lab.wait_load(outage + 45)
    return minus(journeys(lab, match=READS), start)


# A catalog-sized sample (the catalog plays at scale 5 and 6): five times the users, on an
# architecture with five times the capacity.
SCALE = 5
HABITS_OFF = ("--app-cache", "off", "--app-retries", "0", "--app-signed-in", "0")


def test_timeline_down_hurts_web_far_more_than_app_unless_the_app_loses_its_habits(tmp_path):
    # The same fault twice: the app as shipped, then without its cache, its retries and the
    # sessions it keeps from an earlier day.
    windows = {}
    for name, extra in (("app as shipped", ()), ("app without cache or retries", HABITS_OFF)):
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        cfg = load_lab_config(write_lab_config(folder))
        with Lab(cfg, load_architecture(cfg.architecture_path).scaled(SCALE)) as lab:
            windows[name] = outage_window(lab, folder / "run", extra=extra)
            windows[name]["reports"] = reports(lab)

    print({name: w for name, w in windows.items()})  # shown by pytest when an assertion fails
    shipped = windows["app as shipped"]
    web_failed = ratio(shipped["web"], "failed")
    app_failed = ratio(shipped["app"], "failed")
    # Every page view needs the timeline and trends: the website is down for everyone.
    assert web_failed >= 0.8, shipped
    # The app shows its cached timeline instead: degraded, mostly not failed.
    assert app_failed <= 0.35, shipped
    assert ratio(shipped["app"], "degraded") >= 0.3, shipped
    # Reports follow what people saw: many from the website, few from the app.
    rep = shipped["reports"]
    assert rep.get("website", 0) >= 3 and rep.get("website", 0) > rep.get("app", 0), rep

    bare = windows["app without cache or retries"]
    bare_failed = ratio(bare["app"], "failed")
    # Without its habits the app fails much more often, toward the website's failure rate.
    assert bare_failed >= app_failed + 0.25, (shipped, bare)
    assert ratio(bare["app"], "degraded") == 0.0, bare
    # ...and its users, now failing, file reports from the app.
    assert bare["reports"].get("app", 0) >= 2 and bare["reports"].get("app", 0) > rep.get("app", 0), (
        rep,
        bare["reports"],
    )

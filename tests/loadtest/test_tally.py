"""Counts merged from workers equal the counts of one process; the collector exposes them."""

from __future__ import annotations

import json
import random

import pytest
from prometheus_client import CollectorRegistry

from loadtest.tally import JOURNEY_BUCKETS, Tally, TallyCollector

EVENTS = [
    ("web", "home", "failed", "server_error", 2.0),
    ("web", "home", "ok", None, 0.2),
    ("app", "refresh", "degraded", "timeout", 5.5),
    ("app", "refresh", "ok", None, 0.05),
    ("web", "login", "failed", "rate_limited", 12.0),
]


def test_worker_drains_merged_by_master_equal_a_single_process():
    rng = random.Random(7)
    events = [rng.choice(EVENTS) for _ in range(500)]
    single = Tally()
    for e in events:
        single.journey(*e)
    master, workers = Tally(), [Tally(), Tally()]
    for i, e in enumerate(events):
        workers[i % 2].journey(*e)
        if i % 97 == 0:  # workers report now and then; the data travels as JSON
            for w in workers:
                master.merge(json.loads(json.dumps(w.drain())))
    for w in workers:  # the final report when the workers stop
        master.merge(w.drain())
    assert master.journeys == single.journeys
    assert master.reasons == single.reasons
    # Buckets are exact; sums of floats depend on the order they were added in.
    assert {k: v[1] for k, v in master.latency.items()} == {k: v[1] for k, v in single.latency.items()}
    assert {k: v[0] for k, v in master.latency.items()} == pytest.approx({k: v[0] for k, v in single.latency.items()})
    assert all(not w.journeys for w in workers)


def test_collector_exposes_counts_histogram_reports_and_users():
    tally = Tally()
    for e in EVENTS:
        tally.journey(*e)
    tally.report("website")
    tally.report("website")
    registry = CollectorRegistry()
    registry.register(TallyCollector(tally, lambda: {"web": 4, "app": 6}))
    get = registry.get_sample_value
    assert get("failwhale_journeys_total", {"client": "web", "journey": "home", "outcome": "failed"}) == 1
    assert get("failwhale_journey_problems_total", {"client": "web", "journey": "login", "reason": "rate_limited"}) == 1
    assert get("failwhale_journey_problems_total", {"client": "web", "journey": "home", "reason": "server_error"}) == 1
    # A histogram's buckets are cumulative and its count is every journey of that kind.
    labels = {"client": "app", "journey": "refresh"}
    assert get("failwhale_journey_duration_seconds_count", labels) == 2
    assert get("failwhale_journey_duration_seconds_sum", labels) == pytest.approx(5.55)
    assert get("failwhale_journey_duration_seconds_bucket", {**labels, "le": "0.05"}) == 1
    assert get("failwhale_journey_duration_seconds_bucket", {**labels, "le": "10.0"}) == 2
    assert get("failwhale_user_reports_total", {"category": "website"}) == 2
    assert get("failwhale_user_reports_total", {"category": "app"}) == 0  # present, so ratios work from zero
    assert get("failwhale_loadgen_users", {"client": "app"}) == 6


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket():
    tally = Tally()
    tally.journey("web", "home", "ok", None, JOURNEY_BUCKETS[2])
    _, buckets = tally.latency[("web", "home")]
    assert buckets[2] == 1 and sum(buckets) == 1


def test_totals_by_client_and_outcome():
    tally = Tally()
    for e in EVENTS:
        tally.journey(*e)
    assert tally.totals()["web"] == {"ok": 1, "degraded": 0, "failed": 2}
    assert tally.totals()["app"] == {"ok": 1, "degraded": 1, "failed": 0}


def test_a_user_is_hurt_once_however_often_they_fail():
    from types import SimpleNamespace

    from loadtest.journey import Journey
    from loadtest.recorder import TALLY, finish
    from loadtest.reports import Reporter

    TALLY.drain()
    fired = []  # Locust's request event, as the recorder sees it
    env = SimpleNamespace(events=SimpleNamespace(request=SimpleNamespace(fire=lambda **kw: fired.append(kw))))
    unlucky, lucky = Reporter("website", random.Random(1)), Reporter("app", random.Random(2))
    for outcome in ("ok", "failed", "failed", "ok", "failed"):
        j = Journey("web", "home")
        if outcome == "failed":
            j.fail("rate_limited")
        finish(env, j, unlucky)
    for _ in range(3):
        j = Journey("app", "refresh")
        j.degrade("timeout")  # stale content is not a failure: not hurt
        finish(env, j, lucky)
    assert TALLY.drain()["hurt"] == {"web": 1}
    assert len(fired) == 8  # every journey still shows in Locust's own table


def test_users_hurt_merge_across_workers_and_are_exposed_for_both_clients():
    master, worker = Tally(), Tally()
    worker.user_hurt("web")
    worker.user_hurt("web")
    master.merge(json.loads(json.dumps(worker.drain())))
    worker.user_hurt("web")
    master.merge(worker.drain())
    registry = CollectorRegistry()
    registry.register(TallyCollector(master))
    assert registry.get_sample_value("failwhale_users_hurt_total", {"client": "web"}) == 3
    assert registry.get_sample_value("failwhale_users_hurt_total", {"client": "app"}) == 0

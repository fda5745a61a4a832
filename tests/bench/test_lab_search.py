"""The capacity search of ``bench.lab_throughput``: which user counts it tries, and which run it keeps."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest

from bench import lab_throughput as lt


def capacity_search(capacity: int) -> list[int]:
    """The user counts tried against a lab whose p99 passes the bound above ``capacity`` users."""
    tried: dict[int, bool] = {}
    while (users := lt.next_users(tried)) is not None:
        assert users not in tried
        tried[users] = users <= capacity
    return list(tried)


@pytest.mark.parametrize("capacity", [1100, 1700, 1850, 2600, 4000])
def test_the_search_brackets_the_capacity_within_its_resolution(capacity):
    tried = capacity_search(capacity)
    assert len(tried) <= lt.SEARCH_MAX_STEPS
    within = max(u for u in tried if u <= capacity)
    over = min(u for u in tried if u > capacity)
    assert over - within <= lt.SEARCH_RESOLUTION * within
    assert within <= capacity < over


def test_the_search_starts_at_its_start_and_grows_by_its_step():
    assert capacity_search(10_000)[:3] == [1000, 1300, 1690]


def test_a_lab_over_the_bound_at_the_start_is_searched_downwards():
    tried = capacity_search(600)
    assert tried[0] == lt.SEARCH_START_USERS and tried[1] < tried[0]
    assert max(u for u in tried if u <= 600) >= 600 / lt.SEARCH_STEP


def test_the_search_stops_at_its_largest_user_count():
    tried = capacity_search(1_000_000)
    assert max(tried) == lt.SEARCH_MAX_USERS and all(u <= lt.SEARCH_MAX_USERS for u in tried)


def result(users: int, rps: float, p99_ms: float, ok: float = 1.0) -> lt.Result:
    journeys = {"app": Counter(ok=round(1000 * ok), failed=1000 - round(1000 * ok)), "web": Counter(ok=500)}
    return lt.Result("lab", users, 30.0, round(rps * 30), 0, [rps], 10.0, p99_ms, journeys)


def test_a_step_with_failing_journeys_is_over_the_bound_whatever_its_latency():
    assert lt.within_bound(result(1000, 1100, 50), 250)
    assert not lt.within_bound(result(1000, 1100, 260), 250)
    assert not lt.within_bound(result(1000, 1100, 50, ok=0.985), 250)


def test_search_keeps_the_run_with_the_most_requests_within_the_bound(monkeypatch, tmp_path):
    # A lab that serves 1.1 req/s per user up to 1,800 req/s, with p99 rising past 1,650 users.
    def fake_run(args, folder, probe):
        rps = min(1.1 * args.users, 1800)
        return result(args.users, rps, 40 if args.users <= 1650 else 400)

    monkeypatch.setattr(lt, "run_lab", fake_run)
    args = argparse.Namespace(users=None, duration=50.0, spawn_rate=50.0, settle_s=5, p99_bound=250.0)
    best, runs = lt.search(args, tmp_path, tmp_path / "probe.py")
    assert best.users == max(r.users for r in runs if r.users <= 1650)
    assert best.users > 1650 / (1 + lt.SEARCH_RESOLUTION)
    # Each step keeps its steady window after a longer ramp.
    assert lt.step_args(args, 2000).duration == 2000 / 50 + 5 + lt.SEARCH_STEADY_S

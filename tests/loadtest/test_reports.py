"""The report model reacts to what users lived through, not to which cohort they are in."""

from __future__ import annotations

import random

from loadtest.reports import Reporter


def reports_after(outcomes: list[tuple[str, str | None]], surface: str, users: int = 2000) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(users):
        r = Reporter(surface, random.Random(i))
        for outcome, reason in outcomes:
            category = r.after(outcome, reason)
            if category is not None:
                counts[category] = counts.get(category, 0) + 1
    return counts


def test_nobody_reports_a_working_service():
    assert reports_after([("ok", None)] * 20, "website") == {}


def test_runs_of_failures_make_most_people_report_once():
    counts = reports_after([("failed", "server_error")] * 6, "website")
    assert counts.get("website", 0) > 0.8 * 2000  # most of them...
    assert sum(counts.values()) <= 2000  # ...and never more than once each


def test_one_failure_rarely_makes_anyone_report():
    counts = reports_after([("failed", "server_error")], "website")
    assert sum(counts.values()) < 0.4 * 2000


def test_stale_content_is_reported_far_less_than_errors():
    stale = sum(reports_after([("degraded", "server_error")] * 6, "app").values())
    errors = sum(reports_after([("failed", "server_error")] * 6, "app").values())
    assert stale < errors / 5


def test_same_experience_same_reports_whatever_the_surface():
    experience = [("failed", "server_error"), ("ok", None), ("failed", "rate_limited"), ("failed", "server_error")]
    web = reports_after(experience, "website")
    app = reports_after(experience, "app")
    assert web.get("website") == app.get("app")


def test_unreachable_service_is_a_server_connection_report():
    counts = reports_after([("failed", "connection_error")] * 5 + [("failed", "timeout")] * 5, "website")
    assert set(counts) == {"server_connection"}


def test_things_working_again_calm_people_down():
    calmed = sum(
        reports_after(
            [("failed", "server_error")] * 2 + [("ok", None)] * 5 + [("failed", "server_error")], "website"
        ).values()
    )
    angry = sum(reports_after([("failed", "server_error")] * 3, "website").values())
    assert calmed < angry

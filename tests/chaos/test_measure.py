"""The interval shown beside a share of user reports: wide for a few dozen reports, narrow for
many. It is information for the reader; the verdict rests on the share (tests/chaos/test_runner.py)."""

from __future__ import annotations

import pytest

from chaos import measure
from chaos.records import Window


def figures(website: int, app: int) -> Window:
    return Window(clients={}, user_reports={"website": website, "app": app}, reasons={}, health_checks=None)


def test_a_share_of_a_few_dozen_reports_has_a_wide_interval():
    lo, hi, n = measure.report_share_interval(figures(31, 2), "reports.website_share")
    assert n == 33 and lo < 0.9 and hi > 31 / 33  # 94% of 33 reports: chance alone could make it 82% to 90%
    assert measure.measure(figures(31, 2), "reports.website_share", 0) == pytest.approx(31 / 33)


def test_many_reports_pin_the_share_down():
    lo, hi, _ = measure.report_share_interval(figures(940, 60), "reports.website_share")
    assert 0.92 < lo < hi < 0.96  # 94% of 1000 reports is not 82% to 90% by chance


def test_no_reports_no_interval():
    assert measure.report_share_interval(figures(0, 0), "reports.app_share") is None

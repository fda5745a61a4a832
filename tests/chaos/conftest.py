"""Fixtures for the report tests: a realistic run folder of the 2022-12-28 scenario, made by hand.

Both are built from the run-folder records (``chaos/records.py``): the summary follows a real
run's ``summary.json`` and the series a real ``series.json``: the website drops to about 5% of journeys not failed from 25 s to 130 s while
the app stays near 96%, health checks stay at 1, reports climb, v2 reaches 1, 2, then 4 API
replicas and goes away at the rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaos import records
from chaos.records import (
    ClientFigures,
    ExpectationResult,
    Mark,
    PhaseFigures,
    PhaseSpan,
    Series,
    SeriesEntry,
    Summary,
    Trouble,
)
from chaos.series import QUERIES

RUN_NAME = "twitter-2022-12-28-20261121T222934"
DURATION = 180.0


def _phase(
    start: float,
    end: float,
    web: ClientFigures,
    app: ClientFigures,
    reports: dict[str, int],
    reasons: dict[str, dict[str, int]] | None = None,
) -> PhaseFigures:
    return PhaseFigures.model_validate(
        {
            "start": start,
            "end": end,
            "web": web,
            "app": app,
            "user_reports": reports,
            "health_checks": 1.0,
            "reasons": reasons or {"web": {}, "app": {}},
        }
    )


def _client(journeys: int, ok: int, degraded: int, failed: int, users_hurt: int) -> ClientFigures:
    return ClientFigures(
        journeys=journeys,
        ok=ok,
        degraded=degraded,
        failed=failed,
        failure_ratio=round(failed / journeys, 4),
        degraded_ratio=round(degraded / journeys, 4),
        ok_ratio=round(ok / journeys, 4),
        users_hurt=users_hurt,
    )


def _expect(name: str, phase: str, bound: str, measured: float) -> ExpectationResult:
    return ExpectationResult(name=name, phase=phase, bound=bound, measured=measured, held=True)


def make_summary() -> Summary:
    """A fresh summary of a held run, to change freely."""
    quiet = {"website": 0, "app": 0, "server_connection": 0}
    return Summary(
        scenario="twitter-2022-12-28",
        title="2022-12-28: a backend architecture change takes the website down",
        verdict="held",
        problems=[],
        speed=2.0,
        duration=DURATION,
        phases={
            "baseline": _phase(0.0, 10.0, _client(23, 23, 0, 0, 0), _client(39, 39, 0, 0, 0), dict(quiet)),
            "outage": _phase(
                25.0,
                130.0,
                _client(131, 4, 2, 125, 38),
                _client(380, 314, 52, 14, 5),
                {"website": 17, "app": 3, "server_connection": 0},
                {
                    "web": {"rate_limited": 120, "timeout": 5, "server_error": 2},
                    "app": {"rate_limited": 50, "timeout": 16},
                },
            ),
            "recovery": _phase(150.0, 180.0, _client(89, 89, 0, 0, 0), _client(131, 131, 0, 0, 0), dict(quiet)),
        },
        user_reports={"website": 18, "app": 3, "server_connection": 0},
        health_checks=1.0,
        acked_tweets=81,
        lost_tweets=0,
        expectations=[
            _expect("most web users fail", "outage", ">= 0.5", 0.9542),
            _expect("only a fraction of app users fail", "outage", "<= 0.2", 0.0368),
            _expect("reports are mostly about the website", "outage", ">= 0.7 and <= 0.9", 0.85),
            _expect("health checks stay green", "outage", ">= 0.99", 1.0),
            _expect("no acknowledged tweet is lost", "outage", "<= 0", 0.0),
            _expect("the website recovers after the rollback", "recovery", "<= 0.05", 0.0),
        ],
        run_dir=f"/tmp/runs/{RUN_NAME}",
        started=1795300185.056318,
        users_hurt={"web": 41, "app": 5},
        trouble=Trouble(start=15.0, end=139.0, seconds=124.0),
        time_to_recover_s=124.0,
        focus_phase="outage",
        teaches="Process health is not user health, and who notices an outage depends on how each client uses the API.",
        description="An architecture change is rolled out to the whole backend in a few quick waves.",
        facts=[
            "Downdetector reports started to climb at 19:13 and peaked at 19:44.",
            "The status page showed all systems operational throughout.",
        ],
        incident_date="2022-12-28",
        quick=False,
        comparison=None,
    )


def _curve(times: list[float], value: Callable[[float], float | None]) -> list[list[float | None]]:
    return [[t, None if (v := value(t)) is None else round(v, 5)] for t in times]


def _web_share(t: float) -> float:
    """1.0, sliding down after the rollout, ~5% through the outage, back up after the rollback."""
    if t < 14:
        return 1.0
    if t < 25:
        return 1.0 - 0.95 * (t - 14) / 11
    if t <= 130:
        return 0.05
    return min(1.0, 0.05 + 0.95 * (t - 130) / 10)


def make_series() -> Series:
    """A fresh series.json of the same run, to change freely."""
    times = [float(t) for t in range(-5, int(DURATION) + 1)]
    outage = lambda t: 25 <= t <= 130  # noqa: E731
    app_gap = lambda t: 60 <= t <= 62  # noqa: E731 - Prometheus had no answer for a few points

    def v2(t: float) -> float | None:
        replicas = 0 if t < 10 or t >= 131 else 1 if t < 12 else 2 if t < 14 else 4
        return float(replicas) or None  # count by (version) has no line while no replica runs it

    def v1(t: float) -> float | None:
        return (4.0 - (v2(t) or 0.0)) or None

    def ramp(top: float, start: float, end: float) -> Callable[[float], float]:
        return lambda t: 0.0 if t < start else top if t >= end else top * (t - start) / (end - start)

    lines: dict[str, dict[str, list[list[float | None]]]] = {
        "journeys_not_failed": {
            "web": _curve(times, _web_share),
            "app": _curve(times, lambda t: None if app_gap(t) else 0.96 if outage(t) else 1.0),
        },
        "journeys_ok": {
            "web": _curve(times, lambda t: _web_share(t) * (0.6 if outage(t) else 1.0)),
            "app": _curve(times, lambda t: None if app_gap(t) else 0.83 if outage(t) else 1.0),
        },
        "api_errors_by_route": {
            "login": _curve(times, lambda t: 0.8 if outage(t) else 0.0),
            "guest_activate": _curve(times, lambda t: 0.9 if outage(t) else 0.0),
            "home_timeline": _curve(times, lambda t: 0.1 if outage(t) else 0.0),
            "trends": _curve(times, lambda t: 0.0),
        },
        "user_reports": {
            "website": _curve(times, lambda t: round(ramp(18, 23, 80)(t))),
            "app": _curve(times, lambda t: round(ramp(3, 30, 90)(t))),
            "server_connection": _curve(times, lambda t: 0.0),
        },
        "users_hurt": {
            "web": _curve(times, lambda t: round(ramp(41, 15, 60)(t))),
            "app": _curve(times, lambda t: round(ramp(5, 30, 100)(t))),
        },
        "health_checks": {"up": _curve(times, lambda t: 1.0), "ready": _curve(times, lambda t: 1.0)},
        "journey_p95": {
            "web": _curve(times, lambda t: 2.5 if outage(t) else 0.3),
            "app": _curve(times, lambda t: None if app_gap(t) else 0.6 if outage(t) else 0.2),
        },
        "api_p95": {"api": _curve(times, lambda t: 0.9 if outage(t) else 0.02)},
        "users": {"web": _curve(times, lambda t: 18.0), "app": _curve(times, lambda t: 27.0)},
        "api_versions": {"v1": _curve(times, v1), "v2": _curve(times, v2)},
    }
    return Series(
        scenario="twitter-2022-12-28",
        speed=2.0,
        duration=DURATION,
        t0=1795300185.056318,
        step=1.0,
        phases=[
            PhaseSpan(name="baseline", start=0.0, end=10.0),
            PhaseSpan(name="outage", start=25.0, end=130.0),
            PhaseSpan(name="recovery", start=150.0, end=180.0),
        ],
        marks=[
            Mark(at=0.0, kind="note", label="18:50 an ordinary evening"),
            Mark(at=10.0, kind="rollout", label="rollout of v2"),
            Mark(at=10.0, kind="wave", label="wave 1/3: web, edge, auth, timeline, tweets, notifications, api-1"),
            Mark(at=12.0, kind="wave", label="wave 2/3: api-2"),
            Mark(at=14.0, kind="wave", label="wave 3/3: api-3, api-4"),
            Mark(at=60.0, end=75.0, kind="fault", label="fault: 300 ms latency on timeline"),
            Mark(at=130.0, kind="rollback", label="21:00 the change is rolled back"),
        ],
        series={
            name: SeriesEntry.model_validate(
                {"title": QUERIES[name][0], "unit": QUERIES[name][1], "lines": lines[name]}
            )
            for name in QUERIES
        },
    )


def write_run(folder: Path, summary: Summary, series: Series | None) -> Path:
    """A run folder holding these files (no series.json when ``series`` is None) and an empty journal."""
    folder.mkdir(parents=True, exist_ok=True)
    records.write(folder / "summary.json", summary)
    if series is not None:
        records.write(folder / "series.json", series)
    records.write(folder / "journal.json", records.JournalFile(scenario=summary.scenario))
    return folder


@pytest.fixture
def run_summary() -> Summary:
    """The summary of a held 2022-12-28 run, a fresh one per test to change freely."""
    return make_summary()


@pytest.fixture
def run_series() -> Series:
    """The series.json of the same run, a fresh one per test."""
    return make_series()


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run(name, summary=..., series=...)``: a run folder under tmp_path; the fixture run's
    files unless given, and no series.json at all with ``with_series=False``."""

    def make(
        name: str = RUN_NAME,
        *,
        summary: Summary | None = None,
        series: Series | None = None,
        with_series: bool = True,
    ) -> Path:
        data = (series if series is not None else make_series()) if with_series else None
        return write_run(tmp_path / name, summary if summary is not None else make_summary(), data)

    return make


@pytest.fixture(scope="module")
def rendered_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run folder rendered once per test module (plots take about a second)."""
    from chaos.report import render_run

    folder = write_run(tmp_path_factory.mktemp("runs") / RUN_NAME, make_summary(), make_series())
    render_run(folder)
    return folder

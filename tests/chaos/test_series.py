"""What the runner keeps of a run besides the verdict: time to recover, marks, comparisons."""

from __future__ import annotations

from pathlib import Path

from chaos import records
from chaos.engine.runner import Runner
from chaos.engine.verdicts import compare
from chaos.records import JournalEntry, RestartEntry, SeriesEntry, SteadyStateEntry, StepEntry, Trouble
from chaos.scenario import CATALOG, load_scenario
from chaos.series import marks_from_journal, rate_window, time_to_recover
from tests.chaos.conftest import make_summary

CANARY = CATALOG / "canary-counterfactual.yaml"


def not_failed(web: list[float | None], app: list[float | None]) -> dict[str, SeriesEntry]:
    return {
        "journeys_not_failed": SeriesEntry(
            title="journeys not failed",
            unit="ratio",
            lines={
                "web": [(float(t), v) for t, v in enumerate(web)],
                "app": [(float(t), v) for t, v in enumerate(app)],
            },
        )
    }


def test_time_to_recover_spans_first_to_last_moment_below_the_steady_state():
    web: list[float | None] = [1.0] * 5 + [0.1] * 10 + [0.97] * 5
    app: list[float | None] = [1.0] * 3 + [0.9] * 3 + [1.0] * 14  # the app's dip starts first
    assert time_to_recover(not_failed(web, app)) == Trouble(start=3.0, end=14.0, seconds=11.0)


def test_no_trouble_and_trouble_to_the_end_are_told_apart():
    assert time_to_recover(not_failed([1.0] * 10, [0.99] * 10)) is None
    still_down = time_to_recover(not_failed([1.0] * 5 + [0.2] * 5, [1.0] * 10))
    assert still_down == Trouble(start=5.0, end=9.0, seconds=None)


def test_gaps_and_the_warm_up_before_time_zero_are_ignored():
    data = not_failed([None, 0.5, None, 1.0], [1.0] * 4)
    data["journeys_not_failed"].lines["web"].insert(0, (-3.0, 0.0))  # warm-up, before the timeline
    assert time_to_recover(data) == Trouble(start=1.0, end=1.0, seconds=0.0)


def test_marks_put_waves_guard_faults_and_rollbacks_on_scenario_time():
    t0, speed = 1000.0, 2.0
    journal: list[JournalEntry] = [
        SteadyStateEntry(when="before", started=995.0),
        StepEntry(
            index=0,
            action="rollout",
            name="v2",
            at=10.0,
            started=1005.0,
            outcome="rolled_back",
            waves=[["auth", "timeline", "api-1"], ["api-2"]],
            wave_times=[1005.5],
            rolled_back_at=1008.0,
            guard_breached=True,
        ),
        StepEntry(index=1, action="inject", name="slow db", at=20.0, started=1010.0, outcome="ok", ttl_s=30),
        StepEntry(index=2, action="kill", name="api-2 killed", at=24.0, started=1012.0, outcome="ok"),
        RestartEntry(target="api-2", started=1014.0, outcome="ok"),
        StepEntry(index=3, action="rollback", name="undo", at=40.0, started=1020.0, outcome="failed"),
        # A workshop's steps it did not play changed nothing: no mark, whatever their note says.
        StepEntry(
            index=4,
            action="rollback",
            name="the fix",
            at=50.0,
            started=1025.0,
            outcome="skipped",
            note="the room's to find",
            unplayed="left_to_participants",
        ),
        StepEntry(
            index=5,
            action="kill",
            name="later",
            at=60.0,
            started=1030.0,
            outcome="ok",
            note="too late",
            unplayed="after_the_game",
        ),
    ]
    marks = marks_from_journal(journal, t0, speed)
    assert [(m.kind, m.at, m.end) for m in marks] == [
        ("wave", 11.0, None),
        ("guard", 16.0, None),
        ("fault", 20.0, 50.0),
        ("kill", 24.0, None),
        ("restart", 28.0, None),
    ]
    assert marks[0].label == "wave 1: api-1"  # the replicas a wave moved, not every backend
    assert marks[1].label == "guard rolled back"


def test_rates_cover_about_ten_scenario_seconds_but_never_under_three_scrapes():
    assert rate_window(1) == "10s" and rate_window(2) == "5s" and rate_window(5) == "3s"


def summary(folder: Path, **fields) -> None:
    """A finished run of the big bang (the report tests' 2022-12-28 summary), with ``fields`` changed."""
    folder.mkdir(parents=True)
    s = make_summary()
    for name, value in fields.items():
        setattr(s, name, value)
    records.write(folder / "summary.json", s)


def runner(tmp_path: Path, quick: bool = False, scale: float | None = 1.0) -> tuple[Runner, list[str]]:
    """The catalog's canary, at scale 1 unless asked otherwise (the summaries above are at 1)."""
    said: list[str] = []
    return Runner(
        load_scenario(CANARY), "canary-counterfactual", tmp_path, 2.0, say=said.append, quick=quick, scale=scale
    ), said


def test_the_canary_compares_with_the_newest_finished_big_bang_run_of_the_same_kind(tmp_path):
    summary(tmp_path / "twitter-2022-12-28-20261121T100000", users_hurt={"web": 30, "app": 10})
    summary(tmp_path / "twitter-2022-12-28-20261121T110000", users_hurt={"web": 36, "app": 12})
    summary(tmp_path / "twitter-2022-12-28-20261121T120000", users_hurt={"web": 1, "app": 0}, verdict="aborted")
    summary(tmp_path / "twitter-2022-12-28-20261121T130000", users_hurt={"web": 9, "app": 0}, quick=True)
    r, _ = runner(tmp_path)
    got = compare(r, "twitter-2022-12-28", 4)
    assert got.against_run == "twitter-2022-12-28-20261121T110000"
    assert (got.users_hurt, got.against_users_hurt, got.times_fewer) == (4, 48, 12.0)
    # Nobody hurt: "times fewer" is at least the other run's count.
    assert compare(r, "twitter-2022-12-28", 0).times_fewer == 48.0
    # A quick canary compares with a quick big bang.
    assert compare(runner(tmp_path, quick=True)[0], "twitter-2022-12-28", 3).times_fewer == 3.0


def test_the_canary_compares_only_with_a_big_bang_run_at_its_own_scale(tmp_path):
    summary(tmp_path / "twitter-2022-12-28-20261121T100000", users_hurt={"web": 30, "app": 10})
    summary(tmp_path / "twitter-2022-12-28-20261121T110000", users_hurt={"web": 90, "app": 30}, scale=3)
    summary(tmp_path / "twitter-2022-12-28-20261121T120000", users_hurt={"web": 60, "app": 20}, scale=2)
    assert (
        compare(runner(tmp_path)[0], "twitter-2022-12-28", 4).against_run == "twitter-2022-12-28-20261121T100000"
    )  # before scales: 1
    assert (
        compare(runner(tmp_path, scale=3)[0], "twitter-2022-12-28", 4).against_run
        == "twitter-2022-12-28-20261121T110000"
    )
    assert compare(runner(tmp_path, scale=5)[0], "twitter-2022-12-28", 4).times_fewer is None


def test_without_a_big_bang_run_the_comparison_says_what_to_do(tmp_path):
    r, said = runner(tmp_path)
    got = compare(r, "twitter-2022-12-28", 2)
    assert got.times_fewer is None and got.missing is not None
    assert "no finished run of twitter-2022-12-28" in got.missing and said == [got.missing]

"""bench/stability.py: the spread of a scenario's figures over runs, as a person reads the table.

The unit tests build runs from the report tests' 2022-12-28 summary (tests/chaos/conftest.py),
written to run folders and read back the way the bench reads a run's summary.json; the
headline's two expectations that conftest summary leaves out are added in the same shape. The
integration test runs ``python -m bench.stability --smoke``: two real ``failwhale run``s.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from bench import stability
from bench.procs import SMOKE_NOTE
from chaos import records
from chaos.records import ExpectationResult, Summary
from chaos.scenario import CATALOG, load_scenario
from tests.bench.conftest import run_bench
from tests.chaos.conftest import make_summary, write_run

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = CATALOG / "twitter-2022-12-28.yaml"
LOGINS, POSTS = stability.FROM_EXPECTATIONS["logins answered 429"], stability.FROM_EXPECTATIONS["posts failing"]
WEB_EXPECTATION = "most web users fail"  # conftest's name for the outage's web.failure_ratio >= 0.5


def headline_summary(web: float = 0.9542, logins: float = 0.62, posts: float = 0.35, **outage: Any) -> Summary:
    """The conftest summary with the headline's login and post expectations, and the given outage figures."""
    s = make_summary()
    s.phases["outage"].web.failure_ratio = web
    for key, value in outage.items():
        setattr(s.phases["outage"], key, value)
    s.expectations += [
        ExpectationResult(name=LOGINS, phase="outage", bound=">= 0.3", measured=logins, held=logins >= 0.3),
        ExpectationResult(name=POSTS, phase="outage", bound=">= 0.1", measured=posts, held=posts >= 0.1),
    ]
    for e in s.expectations:
        if e.name == WEB_EXPECTATION:
            e.measured, e.held = web, web >= 0.5
    if not all(e.held for e in s.expectations):
        s.verdict = "deviated"
        s.problems = [
            f"expectation '{e.name}' measured {e.measured} (wanted {e.bound})" for e in s.expectations if not e.held
        ]
    return s


def as_runs(tmp_path: Path, summaries: list[Summary | None], seconds: list[float] | None = None) -> list[stability.Run]:
    """Runs whose summary.json the runner wrote (None: a run that crashed before writing one)."""
    runs = []
    for i, s in enumerate(summaries, 1):
        took = seconds[i - 1] if seconds else 60.0 + i
        if s is None:
            runs.append(
                stability.Run(
                    i,
                    1,
                    took,
                    None,
                    log=f"logs/run-{i:02d}.log",
                    tail=["starting 12 processes", "error: not ready after 12s: web, edge"],
                )
            )
            continue
        folder = write_run(tmp_path / f"twitter-2022-12-28-{i:02d}", s, None)
        read = records.read(folder / "summary.json", Summary)
        runs.append(stability.Run(i, 0 if read.verdict == "held" else 1, took, read, str(folder)))
    return runs


def row(table: dict[str, Any], figure: str, kind: str = "main") -> dict[str, Any]:
    (found,) = [r for r in table["rows"] if r["figure"] == figure and r["kind"] == kind]
    return found


def line_of(text: str, figure: str) -> list[str]:
    """The printed table's line for a figure, split on its column gaps."""
    (line,) = [ln for ln in text.splitlines() if ln.startswith(figure + "  ")]
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


def test_an_expectation_held_in_9_of_10_runs_is_reported_so(tmp_path):
    summaries = [headline_summary(web=0.95) for _ in range(9)]
    summaries.insert(4, headline_summary(web=0.45))  # the fifth run: the website half up
    table = stability.build_table(as_runs(tmp_path, summaries))
    web = row(table, WEB_EXPECTATION, "expectation")
    assert (web["held_runs"], web["of"]) == (9, 10)
    assert web["held"][4] is False and web["values"][4] == 0.45
    assert table["verdicts"]["held"] == 9 and table["verdicts"]["deviated"] == 1
    text = stability.format_table(table)
    assert "verdicts: held in 9 of 10 runs (deviated 1)" in text
    assert line_of(text, WEB_EXPECTATION)[-1] == "9/10"
    assert line_of(text, WEB_EXPECTATION)[2] == ">= 0.5"
    # The other expectations held in every run, and the web failure ratio itself has no bound.
    assert line_of(text, "health checks stay green")[-1] == "10/10"
    # A share that is 1.0 in every run is still shown as a share, not as a count.
    assert line_of(text, "health checks stay green")[3:8] == ["10", "1.000", "0.000", "1.000", "1.000"]
    assert line_of(text, "web failure ratio")[-1] == "-"


def test_mean_sd_min_max_are_over_the_runs_with_the_sample_sd(tmp_path):
    table = stability.build_table(as_runs(tmp_path, [headline_summary(web=w) for w in (0.90, 0.95, 1.00)]))
    web = row(table, "web failure ratio")
    assert web["runs"] == 3
    assert web["mean"] == pytest.approx(0.95)
    assert web["sd"] == pytest.approx(0.05)  # sum of squares 0.005 over n - 1 = 2; the population sd would be 0.041
    assert (web["min"], web["max"]) == (0.90, 1.00)
    # As printed: figure, phase, bound, runs, mean, sd, min, max, held.
    assert line_of(stability.format_table(table), "web failure ratio") == [
        "web failure ratio",
        "outage",
        "-",
        "3",
        "0.950",
        "0.050",
        "0.900",
        "1.000",
        "-",
    ]


def test_the_main_figures_come_from_the_focus_phase_and_the_headline_expectations(tmp_path):
    reports = [{"website": 17, "app": 3, "server_connection": 0}, {"website": 24, "app": 6, "server_connection": 0}]
    summaries = [
        headline_summary(logins=0.6, posts=0.3, user_reports=reports[0]),
        headline_summary(logins=0.2, posts=0.5, user_reports=reports[1]),
    ]
    table = stability.build_table(as_runs(tmp_path, summaries))
    assert [r["figure"] for r in table["rows"] if r["kind"] == "main"] == [
        "web failure ratio",
        "app failure ratio",
        "website share of user reports",
        "user reports",
        "logins answered 429",
        "posts failing",
        "users hurt",
    ]
    assert row(table, "app failure ratio")["values"] == [0.0368, 0.0368]
    assert row(table, "website share of user reports")["values"] == pytest.approx([17 / 20, 24 / 30])
    assert row(table, "user reports")["values"] == [20, 30]
    assert row(table, "users hurt")["values"] == [46, 46]  # web 41 + app 5
    logins = row(table, "logins answered 429")
    assert logins["values"] == [0.6, 0.2] and logins["bound"] == ">= 0.3" and logins["held_runs"] == 1
    text = stability.format_table(table)
    assert line_of(text, "logins answered 429")[-1] == "1/2"
    assert line_of(text, "user reports") == ["user reports", "outage", "-", "2", "25", "7.1", "20", "30", "-"]
    # Every expectation also has its own row, in the summary's order.
    assert [r["figure"] for r in table["rows"] if r["kind"] == "expectation"] == [
        e.name for e in summaries[0].expectations
    ]


def test_a_scenario_without_the_headline_expectations_has_no_rows_for_them(tmp_path):
    table = stability.build_table(as_runs(tmp_path, [make_summary(), make_summary()]))
    figures = [r["figure"] for r in table["rows"]]
    assert "logins answered 429" not in figures and "posts failing" not in figures
    assert "web failure ratio" in figures


def test_the_headline_still_has_the_expectations_the_bench_reads_by_name():
    names = {e.name for e in load_scenario(HEADLINE).expectations}
    assert {LOGINS, POSTS} <= names


def test_a_crashed_run_counts_as_not_held_and_shows_its_exit_code_and_last_lines(tmp_path):
    runs = as_runs(tmp_path, [headline_summary(), None, headline_summary()], seconds=[61.0, 14.0, 63.0])
    table = stability.build_table(runs)
    assert table["verdicts"] == {"held": 2, "deviated": 0, "aborted": 0, "crashed": 1}
    web = row(table, WEB_EXPECTATION, "expectation")
    assert web["runs"] == 2 and web["values"][1] is None and (web["held_runs"], web["of"]) == (2, 3)
    assert table["wall"]["values"] == [61.0, 14.0, 63.0]  # a crash took time too
    text = stability.format_table(table)
    assert "verdicts: held in 2 of 3 runs (crashed 1)" in text
    assert "run 2 crashed (exit code 1, no summary.json)" in text
    assert "    error: not ready after 12s: web, edge" in text
    assert stability.progress_line(runs[1], 3) == (
        "run 2 of 3: CRASHED in 14 s (exit code 1): error: not ready after 12s: web, edge"
    )


def test_one_run_has_no_sd_and_wall_time_is_a_row(tmp_path):
    table = stability.build_table(as_runs(tmp_path, [headline_summary()], seconds=[58.3]))
    assert row(table, "web failure ratio")["sd"] is None
    cells = line_of(stability.format_table(table), "wall time per run")
    assert cells == ["wall time per run", "-", "-", "1", "58.3", "-", "58.3", "58.3", "-"]


def test_the_json_table_keeps_every_runs_values_to_recompute_the_spread(tmp_path):
    summaries = [headline_summary(web=w, logins=x) for w, x in ((0.91, 0.5), (0.97, 0.7), (0.88, 0.4), (0.99, 0.2))]
    table = json.loads(json.dumps(stability.build_table(as_runs(tmp_path, summaries)), allow_nan=False))
    for r in [*table["rows"], table["wall"]]:
        values = [v for v in r["values"] if v is not None]
        assert len(r["values"]) == 4 and r["runs"] == len(values), r["figure"]
        assert r["mean"] == pytest.approx(statistics.fmean(values)), r["figure"]
        assert r["sd"] == pytest.approx(statistics.stdev(values)), r["figure"]
        if r["held"] is not None:
            assert r["held_runs"] == sum(r["held"]), r["figure"]
    assert row(table, "logins answered 429")["held"] == [True, True, True, False]
    assert [p["verdict"] for p in table["per_run"]] == ["held", "held", "held", "deviated"]
    assert table["per_run"][3]["problems"] == [f"expectation '{LOGINS}' measured 0.2 (wanted >= 0.3)"]


def test_a_progress_line_names_the_verdict_the_time_and_the_key_figures(tmp_path):
    held, deviated = as_runs(tmp_path, [headline_summary(), headline_summary(web=0.45)], seconds=[61.4, 59.6])
    assert stability.progress_line(held, 10) == (
        "run 1 of 10: HELD in 61 s | web failed 0.954, app failed 0.037, website share 0.850 of 20 reports, "
        "logins answered 429 0.620, posts failing 0.350, users hurt 46"
    )
    line = stability.progress_line(deviated, 10)
    assert line.startswith("run 2 of 10: DEVIATED in 60 s | web failed 0.450,")
    assert line.endswith(f"| not held: {WEB_EXPECTATION} (0.450, wanted >= 0.5)")


def test_a_summary_with_no_measurements_gives_dashes_not_errors(tmp_path):
    # The runner writes this when the steady state never held: no timeline, so no phases.
    s = make_summary().model_copy(
        update={
            "phases": {},
            "expectations": [],
            "users_hurt": {},
            "verdict": "deviated",
            "problems": ["steady state did not hold before the timeline"],
        }
    )
    (run,) = as_runs(tmp_path, [s])
    table = stability.build_table([run])
    assert all(r["runs"] == 0 for r in table["rows"])
    assert line_of(stability.format_table(table), "web failure ratio")[3:8] == ["0", "-", "-", "-", "-"]
    assert stability.progress_line(run, 1).endswith("| not held: steady state did not hold before the timeline")


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--runs", "0"], "error: argument --runs: 0 is out of range: use a whole number from 1 to 1000"),
        (["--runs", "two"], "error: argument --runs: 'two' is not a whole number from 1 to 1000"),
        (["--scale", "0"], "error: argument --scale: 0 is out of range: use a number above 0"),
        (["--scale", "-2"], "error: argument --scale: -2 is out of range: use a number above 0"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        stability.main(argv)
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [says + " (see --help)"]


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--scenario", "no-such-scenario"], "error: no scenario named 'no-such-scenario' (known: "),
        (
            ["--scenario", str(ROOT / "tests" / "chaos" / "data" / "quick.yaml")],
            "error: quick: the scenario has no quick variant: add --full",
        ),
    ],
)
def test_a_scenario_it_cannot_play_is_one_line_and_exit_2(argv, says, capsys, tmp_path):
    assert stability.main([*argv, "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith(says)
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.integration
def test_smoke_runs_the_runner_twice_and_prints_and_writes_the_table(tmp_path, monkeypatch):
    out = tmp_path / "out"
    # The labs' folders go under tmp_path, so that no process left behind can hide.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = run_bench("stability", "--smoke", "--out", str(out), timeout_s=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    text = result.stdout
    assert "run 1 of 2: DEVIATED" in text and "run 2 of 2: DEVIATED" in text, text  # a crash shows its last lines
    assert "verdicts: held in 0 of 2 runs (deviated 2)" in text
    assert line_of(text, "web failure ratio")[:4] == ["web failure ratio", "all", "-", "2"]
    assert line_of(text, "wall time per run")[3] == "2"
    assert SMOKE_NOTE in text

    data = json.loads((out / "stability.json").read_text())
    assert data["finished"] is True and data["scenario"] == "failing-step" and data["runs"] == 2
    assert data["verdicts"]["deviated"] == 2
    # The table's values are the runs' own summaries' figures, run by run.
    summaries = [records.read(Path(p["run_dir"]) / "summary.json", Summary) for p in data["per_run"]]
    assert [Path(p["run_dir"]).parent for p in data["per_run"]] == [out, out]
    web = next(r for r in data["rows"] if r["figure"] == "web failure ratio")
    assert web["values"] == [s.phases["all"].web.failure_ratio for s in summaries]
    hurt = next(r for r in data["rows"] if r["figure"] == "users hurt")
    assert hurt["values"] == [sum(s.users_hurt.values()) for s in summaries]
    assert all(math.isfinite(s) and s > 5 for s in data["wall"]["values"])
    assert all("fault on a process that is not there" in p["problems"][0] for p in data["per_run"])
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["run-01.log", "run-02.log"]

    from tests.integration.test_failwhale_up import lab_pids

    assert lab_pids(str(tmp_path)) == []

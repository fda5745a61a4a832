"""Reports from a run folder alone: plots a reader can trust, words that follow the figures, safe HTML."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from matplotlib.colors import to_hex

from chaos.errors import BadInput
from chaos.records import (
    Comparison,
    DashboardPhoto,
    Mark,
    Series,
    Shot,
    SitePhoto,
    SiteVisit,
    Summary,
    Trouble,
)
from chaos.report import (
    PLOTS,
    ReportError,
    content,
    explain,
    figures,
    html,
    markdown,
    render_index,
    render_run,
    table,
)
from chaos.report.plots import CLIENT_COLOURS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOT_NAMES = [name for name, _, _ in PLOTS]


def swap_clients(summary: Summary) -> Summary:
    """The same run with the web and app figures exchanged."""
    for phase in summary.phases.values():
        phase.web, phase.app = phase.app, phase.web
        phase.reasons = {"web": phase.reasons.get("app", {}), "app": phase.reasons.get("web", {})}
    return summary


def write_raw(path: Path, data: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> None:
    """A run file as JSON with ``change`` made to its data first: bad input on purpose."""
    data = json.loads(json.dumps(data))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


# ---- files --------------------------------------------------------------------------------------


def test_render_run_writes_the_reports_and_a_real_png_per_plot(rendered_run: Path):
    assert (rendered_run / "report.md").stat().st_size > 1000
    assert (rendered_run / "report.html").stat().st_size > 1000
    assert len(PLOT_NAMES) >= 5
    for name in PLOT_NAMES:
        path = rendered_run / "plots" / f"{name}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        image = matplotlib.image.imread(path)
        height, width = image.shape[:2]
        assert height >= 300 and width >= 600, name
        assert image[..., :3].std() > 0.05, f"{name} looks blank"


def test_render_run_returns_the_html_page(make_run, run_series):
    # Every other test reads a folder rendered once; this one checks the return value on its own folder,
    # with gaps everywhere: a series missing, one with no lines, one all nulls.
    series = run_series
    del series.series["journey_p95"]
    series.series["api_errors_by_route"].lines = {}
    reports = series.series["user_reports"]
    reports.lines = {k: [(t, None) for t, _ in pts] for k, pts in reports.lines.items()}
    folder = make_run(series=series)
    out = render_run(folder)
    assert out == folder / "report.html"
    assert all((folder / "plots" / f"{n}.png").read_bytes()[:8] == PNG_MAGIC for n in PLOT_NAMES)


# ---- plots --------------------------------------------------------------------------------------


def test_every_chart_has_axis_labels_a_title_and_a_legend(run_summary, run_series):
    figs = figures(run_summary, run_series)
    assert set(figs) == set(PLOT_NAMES)
    for name, fig in figs.items():
        for ax in fig.axes:
            assert ax.get_xlabel() == "scenario time (s)", name
            assert re.search(r"\((share|count|seconds|per second)", ax.get_ylabel()), (name, ax.get_ylabel())
            assert ax.get_title(), name
            assert ax.get_legend() is not None, name


def test_phases_are_named_and_marks_labelled(run_summary, run_series):
    ax = figures(run_summary, run_series)["journeys"].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert {"baseline", "outage", "recovery"} <= set(texts)
    assert {"wave 1/3", "wave 2/3", "wave 3/3"} <= set(texts)
    assert any(t.startswith("21:00 the change") for t in texts)
    assert not any("ordinary evening" in t for t in texts), "notes are listed in the report, not drawn"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"rollout wave", "rollback", "fault"} <= set(legend)


def test_web_and_app_have_the_same_colour_in_every_chart(run_summary, run_series):
    seen = {"web": set(), "app": set()}
    for fig in figures(run_summary, run_series).values():
        for ax in fig.axes:
            for line in ax.get_lines():
                client = line.get_label().split(" ")[0].split(":")[0]
                if client in seen:
                    seen[client].add(to_hex(line.get_color()))
    assert seen == {c: {to_hex(CLIENT_COLOURS[c])} for c in ("web", "app")}


def test_null_values_are_gaps_not_zeros(run_summary, run_series):
    ax = figures(run_summary, run_series)["journeys"].axes[0]
    app = next(line for line in ax.get_lines() if line.get_label() == "app: not failed")
    by_time = dict(zip(app.get_xdata(), app.get_ydata(), strict=True))
    assert math.isnan(by_time[61.0]) and by_time[59.0] == pytest.approx(0.96)


def test_a_missing_or_empty_series_gives_a_chart_that_says_so(run_summary, run_series):
    del run_series.series["journey_p95"], run_series.series["api_p95"]
    run_series.series["api_errors_by_route"].lines = {}
    figs = figures(run_summary, run_series)
    assert "no data" in [t.get_text() for t in figs["latency"].axes[0].texts]
    assert "no data" in [t.get_text() for t in figs["errors_by_route"].axes[0].texts]
    assert figs["latency"].axes[0].get_xlabel() and figs["latency"].axes[0].get_title()


def test_errors_by_route_shows_only_routes_that_had_errors(run_summary, run_series):
    ax = figures(run_summary, run_series)["errors_by_route"].axes[0]
    assert {line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")} == {
        "login",
        "guest_activate",
        "home_timeline",
    }
    errors = run_series.series["api_errors_by_route"]
    errors.lines = {route: [(t, 0.0) for t, _ in points] for route, points in errors.lines.items()}
    ax = figures(run_summary, run_series)["errors_by_route"].axes[0]
    assert "no route answered with an error (5xx or 429)" in [t.get_text() for t in ax.texts]


# ---- the report's words -------------------------------------------------------------------------


def test_the_report_opens_with_the_verdict_and_lists_every_expectation(rendered_run: Path, run_summary):
    md = (rendered_run / "report.md").read_text()
    first_section = md.index("\n## ")
    assert md.startswith(f"# {run_summary.title}\n") and "**Verdict: HELD**" in md[:first_section]
    for e in run_summary.expectations:
        row = next(line for line in md.splitlines() if line.startswith(f"| {e.name} |"))
        assert f"| {format(e.measured, '.4g')} |" in row and row.endswith("| yes |")
    page = (rendered_run / "report.html").read_text()
    assert page.index('class="verdict verdict-held">HELD<') < page.index("<h2>")


def test_the_report_shows_phases_users_hurt_recovery_and_links(rendered_run: Path):
    md = (rendered_run / "report.md").read_text()
    assert (
        "| outage | 25 s to 130 s | 95.4% | 1.5% | 3.7% | 13.7% | 38 / 5 | website 17 · app 3 · conn 0 | 100% |" in md
    )
    assert "41 website users and 5 app users" in md
    assert "Time to recover: 124 s of scenario time, from 15 s to 139 s" in md
    assert "Downdetector reports started to climb" in md
    for name in PLOT_NAMES:
        assert f"](plots/{name}.png)" in md
    for name in ("summary.json", "journal.json", "series.json"):
        assert f"[{name}]({name})" in md


def test_the_sections_come_in_reading_order_and_optional_ones_only_when_there_is_something(
    make_run, run_summary, run_series
):
    def headings(md: str) -> list[str]:
        return [line.removeprefix("## ") for line in md.splitlines() if line.startswith("## ")]

    always = ["Expectations", "Phases", "Users hurt and time to recover", "Why web and app differed"]
    run_dir = make_run(summary=_photographed(run_summary))
    (run_dir / "photos").mkdir()
    (run_dir / "photos" / "site-outage.png").write_bytes(PNG_MAGIC)
    run_summary.comparison = Comparison(
        against="twitter-2022-12-28", users_hurt=3, against_users_hurt=41, times_fewer=41 / 3
    )
    assert headings(markdown(content(run_summary, run_series, run_dir))) == [
        "What it teaches",
        "The incident it replays (2022-12-28)",
        *always[:3],
        "Compared with the big-bang rollout",
        always[3],
        "The live dashboard and the website during the run",
        "Timeline",
        "Plots",
        "Files",
    ]
    run_summary.teaches = run_summary.description = run_summary.comparison = None
    run_summary.facts, run_summary.dashboard, run_series.marks = [], [], []
    assert headings(markdown(content(run_summary, run_series, run_dir))) == [*always, "Plots", "Files"]


def test_a_deviated_run_says_so_and_shows_what_did_not_hold(run_summary, run_series):
    run_summary.verdict = "deviated"
    run_summary.problems = ["expectation 'most web users fail' measured 0.1 (wanted >= 0.5)"]
    run_summary.expectations[0].measured, run_summary.expectations[0].held = 0.1, False
    md = markdown(content(run_summary, run_series))
    assert "**Verdict: DEVIATED**" in md and "| most web users fail | outage | 0.1 | >= 0.5 | NO |" in md
    assert "verdict-deviated" in html(content(run_summary, run_series))


def test_the_explanation_names_the_client_that_failed_more(run_summary):
    text = " ".join(explain(run_summary))
    assert text.startswith(
        "Website users failed more often than app users in the outage phase: 95.4% of website "
        "journeys failed against 3.7% of app journeys"
    )
    assert 'Of the 127 website journeys that went wrong, 120 (94.5%) were answered 429 "Rate limit exceeded"' in text
    assert "Most of the app's trouble was degraded rather than failed: 13.7%" in text
    assert "85% of the 20 user reports filed in the outage phase were about the website" in text
    assert "Health checks read 100% all the while" in text


def test_swapping_web_and_app_figures_swaps_the_explanation(run_summary):
    text = " ".join(explain(swap_clients(run_summary)))
    assert text.startswith("App users failed more often than website users in the outage phase: 95.4% of app journeys")
    assert "Of the 127 app journeys that went wrong, 120" in text
    assert "Most of the website's trouble was degraded rather than failed" in text


def test_the_explanation_gives_the_reason_each_client_saw(run_summary):
    run_summary.phases["outage"].reasons = {
        "web": {"timeout": 90, "rate_limited": 3},
        "app": {"connection_error": 40},
    }
    text = " ".join(explain(run_summary))
    assert "Of the 93 website journeys that went wrong, 90 (96.8%) gave up waiting for an answer." in text
    assert "All 40 app journeys that went wrong could not connect at all." in text
    assert "same trouble" not in text


def _set_failures(summary: Summary, web: float, app: float) -> Summary:
    phase = summary.phases["outage"]
    for figures_of, ratio in ((phase.web, web), (phase.app, app)):
        figures_of.failure_ratio, figures_of.degraded_ratio = ratio, 0.0
    return summary


def test_when_both_clients_are_fine_it_says_they_did_not_differ(run_summary):
    text = " ".join(explain(_set_failures(run_summary, 0.01, 0.02)))
    assert "Web and app did not differ in the outage phase: both did fine" in text
    assert "failed more often" not in text and "this time users agreed" in text


def test_when_both_fail_alike_it_says_they_did_not_differ_much(run_summary):
    text = " ".join(explain(_set_failures(run_summary, 0.30, 0.33)))
    assert text.startswith(
        "Web and app did not differ much in the outage phase: 30% of website journeys and 33% of "
        "app journeys failed, 3.0 percentage points apart."
    )


def test_without_a_focus_phase_the_worst_phase_for_the_website_is_explained(run_summary):
    run_summary.focus_phase = None
    assert "in the outage phase" in explain(run_summary)[0]
    run_summary.focus_phase = "no-such-phase"
    assert "in the outage phase" in explain(run_summary)[0]


def test_a_folder_of_an_older_format_is_refused_with_one_line(tmp_path: Path, make_run, run_summary, run_series):
    # Summaries before format 2 had no format_version; series.json said "version": 1.
    older = make_run("older-summary")
    write_raw(older / "summary.json", run_summary.model_dump(mode="json"), lambda d: d.pop("format_version"))
    with pytest.raises(ReportError) as err:
        render_run(older)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{older / 'summary.json'}: ")
    assert "summary format version 1; this failwhale reads version 2" in message
    older_series = make_run("older-series")
    write_raw(
        older_series / "series.json",
        run_series.model_dump(mode="json"),
        lambda d: d.update(version=1, format_version=1),
    )
    with pytest.raises(ReportError) as err:
        render_run(older_series)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{older_series / 'series.json'}: ")
    assert "series format version 1; this failwhale reads version 2" in message
    page = render_index(tmp_path / "reports", [older, older_series]).read_text()
    assert [v for v in re.findall(r'class="verdict verdict-\w+">(\w+)<', page)] == ["UNKNOWN", "HELD"]
    assert "summary.json: summary format version 1; this failwhale reads version 2" in page


def test_the_comparison_sentence_appears_only_when_the_summary_has_one(run_summary, run_series):
    assert "big-bang" not in markdown(content(run_summary, run_series))
    run_summary.comparison = comparison = Comparison(
        against="twitter-2022-12-28",
        against_run="twitter-2022-12-28-20261121T222934",
        users_hurt=3,
        against_users_hurt=41,
        times_fewer=41 / 3,
    )
    sentence = (
        "This rollout hurt 3 users; the big-bang rollout of twitter-2022-12-28 "
        "(run twitter-2022-12-28-20261121T222934) hurt 41: 13.7 times fewer."
    )
    assert sentence in markdown(content(run_summary, run_series))
    assert sentence in html(content(run_summary, run_series))
    comparison.users_hurt, comparison.times_fewer = 0, None
    assert "This rollout hurt no users; the big-bang rollout" in markdown(content(run_summary, run_series))


def test_a_run_at_another_scale_says_so_and_one_at_scale_1_says_nothing(run_summary, run_series):
    said = "at scale 3 (3 times the users, rate limits and capacities)"
    assert "at scale" not in markdown(content(run_summary, run_series))  # the default scale
    run_summary.scale = 1.0
    assert "at scale" not in markdown(content(run_summary, run_series))
    run_summary.scale = 3.0
    assert said in markdown(content(run_summary, run_series)) and said in html(content(run_summary, run_series))


# ---- HTML ---------------------------------------------------------------------------------------


def test_html_escapes_everything_from_the_files(run_summary, run_series):
    run_summary.title = "<script>alert('x')</script> & co"
    run_summary.facts = ['<img src="http://evil.example/x.png">']
    run_series.marks.append(Mark(at=50.0, kind="note", label="<b>bold</b>"))
    page = html(content(run_summary, run_series))
    assert "<script" not in page and 'evil.example/x.png">' not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in page
    assert "&lt;script>" in markdown(content(run_summary, run_series))


def test_the_html_page_is_self_contained(rendered_run: Path):
    page = (rendered_run / "report.html").read_text()
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<style>" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) == len(PLOT_NAMES)
    assert all(re.search(r'alt="[^"]{10,}"', img) for img in images)


# ---- index and table ----------------------------------------------------------------------------


def test_the_index_links_every_report_and_shows_each_verdict(tmp_path: Path, make_run, run_summary):
    held = make_run("held-run")
    (held / "report.html").write_text("<html></html>")
    deviated = make_run(
        "deviated-run", summary=run_summary.model_copy(update={"verdict": "deviated", "title": "<i>odd</i>"})
    )
    broken = tmp_path / "broken-run"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    out = render_index(tmp_path / "reports", [held, deviated, broken])
    page = out.read_text()
    assert out == tmp_path / "reports" / "index.html"
    hrefs = re.findall(r'<a href="([^"]+)">', page)
    assert hrefs == ["../held-run/report.html"] and (out.parent / hrefs[0]).resolve() == held / "report.html"
    assert [v for v in re.findall(r'class="verdict verdict-\w+">(\w+)<', page)] == ["HELD", "DEVIATED", "UNKNOWN"]
    assert f"no report yet: failwhale report {deviated}" in page and "summary.json: not valid JSON" in page
    assert "&lt;i&gt;odd&lt;/i&gt;" in page and "<i>" not in page
    assert "95.4%" in page and "website 17 · app 3 · conn 0" in page and "web 41 · app 5" in page and "124 s" in page
    assert "3 scenarios, 1 held, 1 deviated, 1 unknown" in page


def test_the_table_has_one_aligned_row_per_run_and_the_totals(run_summary):
    calm = _set_failures(run_summary.model_copy(deep=True), 0.0, 0.0)
    calm.scenario, calm.trouble = "calm-day", None
    stuck = run_summary.model_copy(
        update={"scenario": "stuck", "verdict": "deviated", "trouble": Trouble(start=20.0, end=180.0, seconds=None)}
    )
    lines = table([run_summary, calm, stuck]).splitlines()
    assert len(lines) == 2 + 3 + 1
    rule = lines[1]
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    cells = [[line[a:b].strip() for a, b in spans] for line in [lines[0], *lines[2:5]]]
    assert cells[0] == ["scenario", "verdict", "phase", "web failed", "app failed", "reports", "time to recover"]
    assert cells[1] == ["twitter-2022-12-28", "HELD", "outage", "95.4%", "3.7%", "website 17 · app 3 · conn 0", "124 s"]
    assert cells[2][0:5] == ["calm-day", "HELD", "outage", "0%", "0%"] and cells[2][6] == "-"
    assert cells[3][0:2] == ["stuck", "DEVIATED"] and cells[3][6] == "not recovered"
    # Every cell sits inside its column: nothing spills into the gap between two columns.
    for line in [lines[0], *lines[2:5]]:
        assert all(line[b : b + 2].strip() == "" for _, b in spans[:-1]), line
    assert lines[-1] == "3 scenarios, 2 held, 1 deviated"


# ---- bad input ----------------------------------------------------------------------------------


def test_a_missing_series_file_is_one_line_naming_it(make_run):
    folder = make_run(with_series=False)
    with pytest.raises(ReportError) as err:
        render_run(folder)
    message = str(err.value)
    assert isinstance(err.value, BadInput) and err.value.exit_code == 2
    assert "\n" not in message and message.startswith(str(folder / "series.json")) and "no such file" in message


@pytest.mark.parametrize(
    ("verdict", "problem", "why"),
    [
        (
            "deviated",
            "steady state did not hold before the timeline",
            "The timeline never started, so nothing was measured: the lab's steady state did not hold before it",
        ),
        ("aborted", "interrupted by SIGINT", "The run was interrupted before its timeline started"),
    ],
)
def test_a_run_that_stopped_before_its_timeline_is_reported_with_why_and_no_plots(
    make_run, run_summary, verdict, problem, why
):
    # The lab came up but the timeline never started: no series to plot, no figures to show.
    stopped = run_summary.model_copy(
        update={"started": None, "verdict": verdict, "problems": [problem], "phases": {}, "expectations": []}
    )
    folder = make_run(summary=stopped, with_series=False)
    page = unescape(render_run(folder).read_text())
    assert verdict.upper() in page and problem in page and why in page
    # Nothing was measured: no empty tables, and no "0 users hurt" that reads like a result.
    for part in ("<h2>Plots</h2>", "<h2>Expectations</h2>", "<h2>Phases</h2>", "Users hurt", "Time to recover"):
        assert part not in page, part
    assert not (folder / "plots").exists()
    md = (folder / "report.md").read_text()
    opening = md.split("## ")[0]  # said with the verdict, not under a section it does not belong to
    assert problem in opening and why in opening
    assert [line for line in md.splitlines() if line.startswith("## ")] == [
        "## What it teaches",
        "## The incident it replays (2022-12-28)",
        "## Files",
    ]
    assert "- [summary.json](summary.json)" in md and "series.json" not in md


def _bad_point(d: dict[str, Any]) -> None:
    d["series"]["journeys_not_failed"]["lines"]["web"][3] = [3.0]


def _mark_without_time(d: dict[str, Any]) -> None:
    d["marks"].append({"kind": "wave"})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[1, 2]", "not a run series (expected a JSON object)"),
        ('{"version": 7, "series": {}}', "series format version 7; this failwhale reads version 2"),
        (_bad_point, "series.journeys_not_failed.lines.web.3.1: Field required"),
        (_mark_without_time, "marks.7.at: Field required"),
    ],
)
def test_a_corrupt_series_file_is_one_line_naming_it(make_run, run_series: Series, text, says):
    folder = make_run()
    if isinstance(text, str):
        (folder / "series.json").write_text(text)
    else:
        write_raw(folder / "series.json", run_series.model_dump(mode="json"), text)
    with pytest.raises(ReportError, match=re.escape(says)) as err:
        render_run(folder)
    assert str(err.value).startswith(f"{folder / 'series.json'}: ") and "\n" not in str(err.value)


def _not_a_number(d: dict[str, Any]) -> None:
    d["phases"]["outage"]["web"]["failure_ratio"] = "lots"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "no such file"),
        ("", "not valid JSON"),
        ('{"format_version": 2, "title": "x"}', "scenario: Field required"),
        (_not_a_number, "phases.outage.web.failure_ratio: Input should be a valid number"),
    ],
)
def test_a_missing_or_corrupt_summary_is_one_line_naming_it(make_run, run_summary: Summary, text, says):
    folder = make_run()
    if text is None:
        (folder / "summary.json").unlink()
    elif isinstance(text, str):
        (folder / "summary.json").write_text(text)
    else:
        write_raw(folder / "summary.json", run_summary.model_dump(mode="json"), text)
    with pytest.raises(ReportError, match=re.escape(says)) as err:
        render_run(folder)
    assert str(err.value).startswith(f"{folder / 'summary.json'}: ") and "\n" not in str(err.value)


def test_a_folder_that_does_not_exist_is_one_line(tmp_path: Path):
    with pytest.raises(ReportError, match="not a run folder"):
        render_run(tmp_path / "nowhere")


# ---- photographs of the dashboard and the website ---------------------------------------------------


def _photographed(run_summary: Summary) -> Summary:
    message = "Something went wrong, but don't fret \u2014 it's not your fault. Let's try again."
    run_summary.dashboard = [
        Shot(
            name="outage",
            planned_at=100.0,
            at=104.2,
            dashboard=DashboardPhoto(
                file="photos/dashboard-outage.png",
                panels={
                    "journey_success": {"last": {"app": 0.91, "web": 0.04}},
                    "status_page": {"color": "green", "text": "All systems operational"},
                    "firing_alerts": {"rows": "1", "rows_text": ["JourneyErrorBudgetBurn web page"]},
                },
            ),
            site=SitePhoto(
                file="photos/site-outage.png",
                visits=[
                    SiteVisit(state="error", message=message, tweets=0),
                    SiteVisit(state="error", message=message, tweets=0),
                    SiteVisit(state="ready", tweets=20),
                ],
            ),
        )
    ]
    return run_summary


def test_the_report_shows_each_photograph_with_what_it_showed(make_run, run_summary, run_series):
    run_dir = make_run(summary=_photographed(run_summary))
    (run_dir / "photos").mkdir()
    for name in ("dashboard-outage", "site-outage"):
        (run_dir / "photos" / f"{name}.png").write_bytes(PNG_MAGIC)
    page = html(content(run_summary, run_series, run_dir))
    md = markdown(content(run_summary, run_series, run_dir))
    for text in (page, md):
        assert "photos/dashboard-outage.png" in text and "photos/site-outage.png" in text
        assert "journeys served: web 4%, app 91%" in text
        assert "All systems operational (green)" in text
        assert "JourneyErrorBudgetBurn web page" in text
        assert "3 new visitors opened the website: 2 got the error message, 1 a timeline" in text


def test_photographs_missing_from_the_folder_are_left_out(make_run, run_summary, run_series):
    run_dir = make_run(summary=_photographed(run_summary))
    (run_dir / "photos").mkdir()
    (run_dir / "photos" / "site-outage.png").write_bytes(PNG_MAGIC)
    md = markdown(content(run_summary, run_series, run_dir))
    assert "photos/site-outage.png" in md and "dashboard-outage.png" not in md
    run_summary.dashboard = []
    assert "live dashboard" not in markdown(content(run_summary, run_series, run_dir))

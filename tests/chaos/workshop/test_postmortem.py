"""The workshop's postmortem draft, from a synthetic game: what a facilitator checks before the debrief.

The run is the report tests' 2022-12-28 run (tests/chaos/conftest.py) played as a workshop with no
lead-in: the rollout at 10 s, the website down from about 25 s, an alert at 31 s, then the room's
levers: a declaration, a wrong lever (scale), a refused one, and the rollback at 125 s.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from markupsafe import escape

from chaos import report
from chaos.records import Alert, JournalEntry, LeverEntry, ServedAfter, StepEntry, Trouble
from chaos.scenario import CATALOG, load_scenario
from chaos.workshop import postmortem
from chaos.workshop.plan import hidden
from chaos.workshop.scorecard import scorecard, scorecard_text
from tests.chaos.conftest import make_series, make_summary

HEADLINE = CATALOG / "twitter-2022-12-28.yaml"
T0 = make_series().t0
SPEED = 2.0
ROLLBACK_STEP = "21:00 the change is rolled back"  # the conftest series marks it at 130 s
# (who, lever) in the order pulled
LEVERS = [("early-bird", "pause"), ("ic", "declare"), ("ops", "scale"), ("sre", "rate-limit"), ("ops", "rollback")]


def _wall(at: float) -> float:
    """Wall-clock time of a scenario time (scenario time / speed after t0)."""
    return T0 + at / SPEED


def _step(i: int, action: str, name: str, at: float, note: str | None = None, **extra: Any) -> StepEntry:
    # started: when the runner began the step, in wall time
    return StepEntry(index=i, action=action, name=name, at=at, started=_wall(at), outcome="ok", note=note, **extra)


def _lever(lever: str, who: str, at: float | None, note: str, outcome: str = "ok", **extra: Any) -> LeverEntry:
    # started is fixed, as the rest, so that two journals made alike are equal
    started = _wall(-10.0 if at is None else at)
    return LeverEntry(lever=lever, who=who, at=at, started=started, outcome=outcome, note=note, **extra)


def make_journal() -> list[JournalEntry]:
    return [
        _lever(
            "pause", "early-bird", None, "no rollout is in progress: the next one will hold"
        ),  # before the clock started
        _step(0, "note", "note", 0.0, "18:50 an ordinary evening"),
        _step(
            1,
            "rollout",
            "19:00 the architecture change (v2), in three quick waves",
            10.0,
            "v2 on 3/3 waves",
            wave_times=[_wall(10.0), _wall(12.0), _wall(14.0)],
        ),
        _lever("declare", "ic", 42.5, "incident declared, SEV1"),
        _lever(
            "scale",
            "ops",
            60.0,
            "timeline capacity now 8 concurrent builds",
            served_after=ServedAfter(at=90.0, web=0.05, app=0.96),
        ),
        _lever("rate-limit", "sre", 70.0, "factor must be between 0.1 and 10, not 50", outcome="refused"),
        _lever("rollback", "ops", 125.0, "every process is back on the architecture it started with"),
        _step(5, "rollback", ROLLBACK_STEP, 130.0, "left to the participants", unplayed="left_to_participants"),
    ]


def make_game() -> dict[str, Any]:
    """Everything chaos.workshop.postmortem.write takes, as the workshop game would hand it over."""
    scenario = hidden(load_scenario(HEADLINE), 0.0)
    summary = make_summary()
    summary.alerts = [
        Alert(alert="JourneyErrorBudgetBurn", client="web", severity="page", first_at=31.0, last_at=140.0)
    ]
    journal = make_journal()
    card = scorecard(summary, journal, scenario, SPEED)
    return {
        "summary": summary,
        "series": make_series(),
        "journal": journal,
        "scenario": scenario,
        "card": card,
        "card_text": scorecard_text(card),
    }


@pytest.fixture
def game() -> dict[str, Any]:
    return make_game()


@pytest.fixture(scope="module")
def page() -> str:
    """The HTML draft of the game, rendered once per module (six SVG plots take about a second)."""
    return postmortem.html(**make_game())


def _md(game: dict[str, Any]) -> str:
    g = {k: v for k, v in game.items() if k != "series"}
    return postmortem.markdown(**g)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _figure(page: str, name: str) -> str:
    start = page.index(f'<figure id="plot-{name}">')
    return page[start : page.index("</figure>", start)]


# ---- the timeline ---------------------------------------------------------------------------------


def test_the_timeline_has_the_change_alert_levers_and_recovery_in_order(game):
    evs = postmortem.events(game["summary"], game["journal"], game["card"])
    # The lever pulled before the game's clock started comes first.
    assert evs[0].early and not any(e.early for e in evs[1:])
    evs = evs[1:]
    assert [(e.at, e.kind) for e in evs] == [
        (0.0, "step"),
        (10.0, "change"),
        (31.0, "alert"),
        (42.5, "lever"),
        (60.0, "lever"),
        (70.0, "lever"),
        (125.0, "lever"),
        (139.0, "recovery"),
    ]
    assert evs[1].text == "rollout: 19:00 the architecture change (v2), in three quick waves (ok)"
    assert evs[2].text == "alert JourneyErrorBudgetBurn (web) fires"
    assert [(e.who, e.lever) for e in evs if e.kind == "lever"] == LEVERS[1:]
    assert evs[3].text == "ic pulled declare: incident declared, SEV1"
    assert evs[5].text == "sre pulled rate-limit (refused): factor must be between 0.1 and 10, not 50"
    # Plain text for both renderers, and the rollback step the room had to find is not an event.
    assert not any("**" in e.text or ROLLBACK_STEP in e.text for e in evs)


def test_a_step_the_game_did_not_play_is_no_change(game):
    unplayed = _step(
        6, "kill", "kill timeline-1", 150.0, "not played: the workshop had ended", unplayed="after_the_game"
    )
    journal = [*game["journal"], unplayed]
    last = postmortem.events(game["summary"], journal, game["card"])[-1]
    assert (last.at, last.kind) == (150.0, "step") and "not played" in last.text


def test_every_lever_appears_in_order_with_who_pulled_it_in_both_drafts(game, page):
    timeline = _section(_md(game), "## Timeline")
    rows = [line for line in timeline.splitlines() if line.startswith("| ") and "| lever |" in line]
    assert [re.search(r"\*\*(.+?)\*\* pulled \*\*(.+?)\*\*", r).groups() for r in rows] == LEVERS
    assert rows[0].startswith("| before the start | lever |") and rows[1].startswith("| 42.5 s | lever |")
    assert "(refused)" in rows[3]
    html_timeline = page[page.index("<h2>Timeline") : page.index("<h2>Who was hurt")]
    assert re.findall(r"<strong>(.+?)</strong> pulled <strong>(.+?)</strong>", html_timeline) == LEVERS


# ---- plots ----------------------------------------------------------------------------------------


def test_the_html_has_the_plots_inline_as_svg(page):
    assert "<img" not in page and "<?xml" not in page and "<!DOCTYPE svg" not in page
    for name in ("journeys", "reports"):
        svg = _figure(page, name)
        assert svg.count("<svg") == 1 and "<path" in svg, name
    assert page.count("<svg") == len(report.PLOTS)


def test_each_lever_is_a_labelled_mark_on_the_journeys_plot(page, game):
    svg = _figure(page, "journeys")
    root = ElementTree.fromstring(svg[svg.index("<svg") : svg.index("</svg>") + len("</svg>")])
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    labels = [f"{lever} by {who}" for who, lever in LEVERS[1:]]  # the early pause has no time to mark
    assert [t for t in texts if t in labels] == labels
    # Where each mark is, and how it is drawn: checked on the figure the SVG is made from.
    ax = postmortem.figures(game["summary"], game["series"], game["journal"], game["card"])["journeys"].axes[0]
    marks = [line for line in ax.get_lines() if line.get_color() == postmortem.LEVER_COLOUR]
    assert [(line.get_xdata()[0], line.get_linestyle()) for line in marks] == [
        (42.5, "-"),
        (60.0, "-"),
        (70.0, ":"),
        (125.0, "-"),
    ]
    assert "lever pulled (dotted: refused or failed)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_rollback_step_left_to_the_room_is_not_drawn_as_a_rollback(game):
    def rollbacks(figs):  # mark labels are cut at 24 characters
        texts = [t.get_text() for t in figs["journeys"].axes[0].texts]
        return [t for t in texts if t.startswith("21:00 the change")], "rollout of v2" in texts

    assert rollbacks(report.figures(game["summary"], game["series"])) == (
        ["21:00 the change is rol…"],
        True,
    )  # marked...
    drawn = postmortem.figures(game["summary"], game["series"], game["journal"], game["card"])
    assert rollbacks(drawn) == ([], True)  # ...but it did not happen


def test_a_lever_pulled_after_the_scenario_ended_is_on_the_plot(game):
    game["journal"].append(_lever("end", "facilitator", 230.0, "the game ends"))
    ax = postmortem.figures(game["summary"], game["series"], game["journal"], game["card"])["journeys"].axes[0]
    assert ax.get_xlim()[1] >= 230.0 > game["series"].duration
    assert "end by facilitator" in [t.get_text() for t in ax.texts]


# ---- safety ---------------------------------------------------------------------------------------


def test_a_hostile_name_is_escaped_everywhere(game):
    hostile = "$\\x$<script>"  # "$...$" would be mathtext, and fail to parse
    game["journal"][3].who = hostile
    game["card"] = scorecard(game["summary"], game["journal"], game["scenario"], SPEED)
    game["card_text"] = scorecard_text(game["card"])
    page = postmortem.html(**game)
    assert "<script" not in page.lower()
    assert f"<strong>{escape(hostile)}</strong> pulled <strong>declare</strong>" in page
    assert "&lt;script&gt;" in _figure(page, "journeys")  # the mark's label, escaped by matplotlib
    md = _md(game)
    assert "**$\\x$&lt;script>** pulled **declare**" in _section(md, "## Timeline")
    assert "<script" not in _section(md, "## Debrief")


# ---- web against app, and the debrief -------------------------------------------------------------


def test_the_split_shows_web_and_app_failures_of_each_phase(game):
    game["summary"].phases["recovery"].web.failure_ratio = 0.02
    md = _section(_md(game), "## Who was hurt")
    assert "| outage | 25 s to 130 s | 95.4% | 3.7% |" in md
    assert "| baseline | 0 s to 10 s | 0% | 0% |" in md
    assert "| recovery | 150 s to 180 s | 2% | 0% |" in md
    assert "Website users failed more often than app users in the outage phase" in md
    page = postmortem.html(**(game | {"series": None}))
    split = page[page.index("<h2>Who was hurt") : page.index("<h2>Plots")]
    rows = re.findall(
        r"<tr><td>(\w+)</td><td>[^<]*</td><td class=\"num\">([^<]*)</td><td class=\"num\">([^<]*)</td>", split
    )
    assert rows == [("baseline", "0%", "0%"), ("outage", "95.4%", "3.7%"), ("recovery", "2%", "0%")]


def test_the_debrief_asks_its_questions_against_this_games_facts(game, page):
    md = _md(game)
    debrief = _section(md, "## Debrief")
    for q in game["scenario"].workshop.debrief:
        assert f"- {q}" in debrief and f"<li>{escape(q)}</li>" in page
    for f in game["scenario"].incident.facts:
        assert f"- {f}" in _section(md, "## The incident it replays (2022-12-28)") and f"<li>{escape(f)}</li>" in page
    facts = [
        "The change came at T+10 s.",
        "The first alert, JourneyErrorBudgetBurn (web), fired at T+31 s (21 s after the change).",
        "ic pulled declare at T+42.5 s (32.5 s after the change): the room had noticed.",
        "ops pulled scale at T+60 s (50 s after the change); at T+90 s web 5% and app 96% of journeys were served.",
        "sre pulled rate-limit (refused) at T+70 s (60 s after the change).",
        "ops pulled the fix, rollback, at T+125 s (115 s after the change); web and app journeys held again at "
        "T+139 s (129 s after the change).",
    ]
    for f in facts:
        assert f"- {f}" in debrief and f"<li>{escape(f)}</li>" in page


def test_without_the_fix_the_debrief_says_nobody_pulled_it(game):
    game["journal"] = [e for e in game["journal"] if not (isinstance(e, LeverEntry) and e.lever == "rollback")]
    game["summary"].trouble = Trouble(start=15.0, end=180.0, seconds=None)
    game["card"] = scorecard(game["summary"], game["journal"], game["scenario"], SPEED)
    debrief = _section(_md(game), "## Debrief")
    assert "- Nobody pulled rollback: users were still hurting when the game ended." in debrief
    assert "pulled the fix" not in debrief


# ---- files ----------------------------------------------------------------------------------------


def test_the_markdown_draft_has_its_sections_in_debrief_order(game):
    md = _md(game)
    assert [line for line in md.splitlines() if line.startswith("#")] == [
        f"# Postmortem draft: {game['scenario'].title}",
        "## Scorecard",
        "## Timeline (scenario time)",
        "## Who was hurt: web against app",
        "## Debrief",
        "## The incident it replays (2022-12-28)",
    ]
    assert md.endswith("Plots, with every lever pulled marked on them: see postmortem.html in this folder.\n")


def test_write_puts_both_drafts_in_the_run_folder(tmp_path: Path, game):
    md_path, html_path = postmortem.write(tmp_path, **game)
    assert (md_path, html_path) == (tmp_path / "postmortem.md", tmp_path / "postmortem.html")
    md = md_path.read_text(encoding="utf-8")
    assert md.startswith(f"# Postmortem draft: {game['scenario'].title}\n")
    assert "postmortem.html" in md and "report.html" not in md
    assert game["card_text"] in md and f"<pre>{escape(game['card_text'])}</pre>" in html_path.read_text(
        encoding="utf-8"
    )


def test_without_series_the_page_says_it_has_no_plots(game):
    page = postmortem.html(**(game | {"series": None}))
    assert "<svg" not in page and "No plots: the run saved no series.json." in page
    assert game["journal"] == make_journal()  # rendering changed nothing it was given

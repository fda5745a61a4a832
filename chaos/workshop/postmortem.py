"""The postmortem draft of a workshop game: ``postmortem.md`` and ``postmortem.html`` in its run folder.

When a workshop ends (:mod:`chaos.workshop.game`), the room debriefs from a draft made of the run's own
records: the timeline (the change, the alerts that fired, the declaration, every lever pulled and
by whom, the recovery), the web-versus-app split of each phase, this game's figures beside the
scenario's debrief questions, and the facts of the real incident it replays. The Markdown draft
is for editing into a real postmortem; the HTML page is the same draft with the report's plots
inline (SVG, so the page is one file), each lever marked on them where it was pulled.

Everything is read from the summary, series, journal and scorecard (their records, in
:mod:`chaos.records`), as :mod:`chaos.report` reads a run folder, so a draft can be made again
from the folder's files.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from chaos import report
from chaos.records import JournalEntry, LeverEntry, Mark, Scorecard, Series, ServedAfter, StepEntry, Summary
from chaos.report import PLOTS, PhaseRow, explain, md_table, md_text, pct
from chaos.scenario import CHANGES, Scenario
from chaos.series import alert_marks, alert_name

# Levers that say the room noticed, rather than act on the lab.
NOTICING = ("declare", "ack")
KINDS = ("change", "step", "alert", "lever", "recovery")
# Levers are the room's own actions: one colour no data line uses, solid when the lever acted,
# dotted when it was refused or failed, so a lever that did nothing does not look like one that did.
LEVER_COLOUR = "#6a1b9a"
LEVER_FONT_PT = 8
LEVER_LABEL_CHARS = 28
# Plot marks for steps that did not play: the runner's series marks list them all the same.
UNPLAYED_MARKS = {"rollback": "rollback", "kill": "kill", "inject": "fault"}


@dataclass(frozen=True)
class Event:
    """One line of the timeline, in scenario seconds. ``text`` is the whole line in plain words;
    a lever also carries ``who``, ``lever``, ``outcome`` and ``detail`` for the renderers to style."""

    at: float
    kind: str  # one of KINDS
    text: str
    who: str | None = None
    lever: str | None = None
    outcome: str | None = None
    detail: str | None = None
    early: bool = False  # a lever pulled before the game's clock started: listed first, at no time


def _lever_event(e: LeverEntry) -> Event:
    who, lever, outcome = e.who or "someone", e.lever, e.outcome
    detail = e.note or outcome
    # A refused lever changed nothing: say so, or "scale: only the timeline..." reads as done.
    did = f"pulled {lever}" + ("" if outcome == "ok" else f" ({outcome})")
    # Pulled before the game's clock started (a deploy freeze, an early status post): listed first.
    return Event(
        0.0 if e.at is None else e.at,
        "lever",
        f"{who} {did}: {detail}",
        who=who,
        lever=lever,
        outcome=outcome,
        detail=detail,
        early=e.at is None,
    )


def _step_event(e: StepEntry) -> Event:
    name = e.name or e.action
    if e.action == "note":
        return Event(e.at, "step", e.note or name)
    if e.unplayed == "after_the_game":  # the game ended first: it changed nothing
        return Event(e.at, "step", f"{e.action}: {name} ({e.note or 'not played'})")
    return Event(e.at, "change" if e.action in CHANGES else "step", f"{e.action}: {name} ({e.outcome})")


def events(summary: Summary, journal: list[JournalEntry], card: Scorecard) -> list[Event]:
    """The game's timeline, sorted by time (ties keep the journal's order): the steps that played,
    every lever pulled, when each alert first fired, and when users recovered."""
    out: list[Event] = []
    for e in journal:
        # A fix left to the room is not an event of its own: the lever the room pulled for it is.
        if isinstance(e, StepEntry) and e.unplayed != "left_to_participants":
            out.append(_step_event(e))
        elif isinstance(e, LeverEntry):
            out.append(_lever_event(e))
    out += [Event(m.at, "alert", f"alert {m.label}") for m in alert_marks(summary.alerts)]
    if card.recovered_at is not None:
        out.append(Event(card.recovered_at, "recovery", "web and app journeys hold again"))
    return sorted(out, key=lambda x: (not x.early, x.at))


# ---- what both pages say ------------------------------------------------------------------------


def _when(at: float | None, since: float | None = None) -> str:
    if at is None:
        return "-"
    text = f"T+{round(at, 1):g} s"
    return text if since is None else f"{text} ({round(at - since, 1):g} s after the change)"


def _served(after: ServedAfter | None) -> str:
    if after is None or after.web is None or after.app is None:
        return ""
    return f"; at {_when(after.at)} web {pct(after.web)} and app {pct(after.app)} of journeys were served"


def _fix_fact(card: Scorecard, scenario: Scenario) -> str:
    change, fix, recovered = card.change_at, card.fixed, card.recovered_at
    if fix:
        return f"{fix.who} pulled the fix, {fix.lever}, at {_when(fix.at, change)}; " + (
            f"web and app journeys held again at {_when(recovered, change)}."
            if recovered is not None
            else "journeys had not held again by the end of the game."
        )
    fix_name = scenario.workshop.fix_command if scenario.workshop else "the fix"
    by = card.mitigated_by
    if recovered is None:
        return f"Nobody pulled {fix_name}: users were still hurting when the game ended."
    return f"Nobody pulled {fix_name}, yet web and app journeys held again at {_when(recovered, change)}" + (
        f", after {by.who} pulled {by.lever}." if by else "."
    )


def game_facts(summary: Summary, card: Scorecard, scenario: Scenario) -> list[str]:
    """This game's facts, one sentence each, for the debrief questions to be asked against."""
    change = card.change_at
    out = [f"The change came at {_when(change)}."]
    first = card.first_alert
    out.append(
        f"The first alert, {alert_name(first.alert, first.client)}, fired at {_when(first.first_at, change)}."
        if first
        else "No alert fired."
    )
    seen = card.detected
    out.append(
        f"{seen.who} pulled {seen.lever} at {_when(seen.at, change)}: the room had noticed."
        if seen
        else "Nobody declared an incident or acknowledged an alert."
    )
    fix = card.fixed
    for x in card.levers:
        if x.lever in (*NOTICING, "end") or (fix and x.at == fix.at and x.lever == fix.lever):
            continue
        # Every other lever is one the scenario's fix is not: what it did is the debrief's material.
        did = "" if x.outcome == "ok" else f" ({x.outcome})"
        out.append(f"{x.who} pulled {x.lever}{did} at {_when(x.at, change)}{_served(x.served_after)}.")
    out.append(_fix_fact(card, scenario))
    if not card.change_happened:
        out.insert(1, "The change never reached the lab: its rollout was held, then stopped, before its first wave.")
    hurt, reports = card.users_hurt, card.user_reports
    if hurt:
        out.append(
            f"{hurt.get('web', 0)} website users and {hurt.get('app', 0)} app users had a failed journey; "
            f"user reports: {report.reports_text(reports)}."
        )
    return out


@dataclass(frozen=True)
class EventRow:
    """An event of the timeline with its time as printed."""

    at: str  # "42.5 s", or "before the start" for an early lever
    event: Event

    @property
    def kind(self) -> str:
        """The event's kind, one of :data:`KINDS`."""
        return self.event.kind


@dataclass(frozen=True)
class Draft:
    """Everything the draft says, as text ready to print; postmortem.md and postmortem.html both render it."""

    title: str
    description: str
    card_text: str
    timeline: tuple[EventRow, ...]
    phases: tuple[PhaseRow, ...]
    why: tuple[str, ...]
    game_facts: tuple[str, ...]
    debrief: tuple[str, ...]  # the scenario's debrief questions; none outside a workshop scenario
    incident_date: str
    facts: tuple[str, ...]


def _content(
    summary: Summary, journal: list[JournalEntry], scenario: Scenario, card: Scorecard, card_text: str
) -> Draft:
    return Draft(
        title=f"Postmortem draft: {scenario.title}",
        description=scenario.description.strip(),
        card_text=card_text,
        timeline=tuple(
            EventRow(at="before the start" if e.early else report.seconds_text(e.at), event=e)
            for e in events(summary, journal, card)
        ),
        phases=tuple(report.phase_rows(summary)),
        why=tuple(explain(summary)),
        game_facts=tuple(game_facts(summary, card, scenario)),
        debrief=tuple(scenario.workshop.debrief) if scenario.workshop else (),
        incident_date=scenario.incident.date,
        facts=tuple(scenario.incident.facts),
    )


# ---- postmortem.md ------------------------------------------------------------------------------


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in the text, so nothing in it can close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _md_event(e: Event) -> str:
    if e.kind == "lever":
        did = f"pulled **{e.lever}**" + ("" if e.outcome == "ok" else f" ({e.outcome})")
        return f"**{e.who}** {did}: {e.detail}"
    return e.text


def _md_scorecard(c: Draft) -> list[str]:
    """The title, what the scenario is, and the scorecard verbatim in a code block."""
    fence = _fence(c.card_text)
    return [f"# {md_text(c.title)}", "", md_text(c.description), "", "## Scorecard", "", fence, c.card_text, fence, ""]


def _md_timeline(c: Draft) -> list[str]:
    rows = [[t.at, t.kind, _md_event(t.event)] for t in c.timeline]
    return ["## Timeline (scenario time)", "", *md_table(["time", "kind", "what"], rows)]


def _md_split(c: Draft) -> list[str]:
    """Each phase's web and app figures side by side, then why they differed."""
    head = [
        "phase",
        "scenario time",
        "web failed",
        "app failed",
        "web degraded",
        "app degraded",
        "users hurt (web / app)",
        "reports",
    ]
    rows = [
        [p.name, p.time, p.web_failed, p.app_failed, p.web_degraded, p.app_degraded, p.users_hurt, p.reports]
        for p in c.phases
    ]
    return ["## Who was hurt: web against app", "", *md_table(head, rows), " ".join(md_text(s) for s in c.why), ""]


def _md_debrief(c: Draft) -> list[str]:
    out = ["## Debrief", "", "What this game's figures say:", "", *(f"- {md_text(f)}" for f in c.game_facts), ""]
    if c.debrief:
        out += ["Questions:", "", *(f"- {md_text(q)}" for q in c.debrief), ""]
    return out


def _md_incident(c: Draft) -> list[str]:
    return [
        f"## The incident it replays ({md_text(c.incident_date)})",
        "",
        *(f"- {md_text(f)}" for f in c.facts),
        "",
        "Plots, with every lever pulled marked on them: see postmortem.html in this folder.",
        "",
    ]


def markdown(summary: Summary, journal: list[JournalEntry], scenario: Scenario, card: Scorecard, card_text: str) -> str:
    """postmortem.md: the draft as Markdown; its plots are in postmortem.html beside it."""
    c = _content(summary, journal, scenario, card, card_text)
    sections = (_md_scorecard, _md_timeline, _md_split, _md_debrief, _md_incident)
    return "\n".join(line for section in sections for line in section(c))


# ---- plots with the levers on them --------------------------------------------------------------


def _lever_label(e: Event) -> str:
    text = f"{e.lever} by {e.who}"
    return text if len(text) <= LEVER_LABEL_CHARS else text[: LEVER_LABEL_CHARS - 1] + "…"


def _draw_levers(ax: Axes, levers: list[Event]) -> None:
    """A vertical line at each lever, labelled along its foot (the report's marks label the top)."""
    left, right = ax.get_xlim()
    last, up = None, 0.0
    for e in levers:
        ax.axvline(e.at, color=LEVER_COLOUR, linestyle="-" if e.outcome == "ok" else ":", linewidth=1.6, zorder=3)
        text = _lever_label(e)
        # Levers pulled close together would print over each other: stack them, as the report's plots do.
        close = last is not None and e.at - last < 0.04 * (right - left)
        up = up + 4 if close else 4
        last = e.at
        # parse_math off: a "$" in who pulled it is their name, not mathtext (which could fail to parse).
        ax.annotate(
            text,
            xy=(e.at, 0.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(2, up),
            textcoords="offset points",
            rotation=90,
            fontsize=LEVER_FONT_PT,
            ha="left",
            va="bottom",
            color=LEVER_COLOUR,
            annotation_clip=True,
            clip_on=True,
            parse_math=False,
            bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.5},
        )
        up += LEVER_FONT_PT * 0.62 * len(text)
    legend = ax.get_legend()
    if legend is not None and levers:
        # The report's legend sits outside the axes; rebuilt with the same place and size, one entry more.
        handles = [*legend.legend_handles, Line2D([], [], color=LEVER_COLOUR, linewidth=1.6)]
        labels = [t.get_text() for t in legend.get_texts()] + ["lever pulled (dotted: refused or failed)"]
        ax.legend(
            handles=handles, labels=labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
        )


def _played_marks(series: Series, journal: list[JournalEntry]) -> list[Mark]:
    """The series' marks without those of steps the game did not play. The runner leaves them out
    (:func:`chaos.series.marks_from_journal`); this keeps a series.json made any other way from
    showing a rollback left to the participants where none happened."""
    skipped = [
        # Where marks_from_journal would have put it.
        (UNPLAYED_MARKS[e.action], e.name or e.action, (e.started - series.t0) * series.speed)
        for e in journal
        if isinstance(e, StepEntry) and e.action in UNPLAYED_MARKS and e.unplayed is not None
    ]

    def unplayed(m: Mark) -> bool:
        return any(m.kind == kind and m.label == name and abs(m.at - at) < 0.5 for kind, name, at in skipped)

    return [m for m in series.marks if not unplayed(m)]


def figures(summary: Summary, series: Series, journal: list[JournalEntry], card: Scorecard) -> dict[str, Figure]:
    """The report's plots (:func:`chaos.report.figures`) for the whole game, each lever marked on every chart."""
    levers = [e for e in events(summary, journal, card) if e.kind == "lever" and not e.early]  # early ones have no time
    # The game goes on past the scenario's duration until the facilitator ends it: show all of it.
    end = max(
        [
            series.duration,
            *report.series_times(series),
            *(e.at for e in levers),
            *([] if card.recovered_at is None else [card.recovered_at]),
        ]
    )
    figs = report.figures(summary, series.model_copy(update={"duration": end, "marks": _played_marks(series, journal)}))
    for fig in figs.values():
        for ax in fig.axes:
            _draw_levers(ax, levers)
    return figs


def svg(fig: Figure) -> Markup:
    """A figure as an inline ``<svg>`` element, its text as text (searchable, selectable, small)."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    # Inline SVG needs no XML declaration or DOCTYPE; scaled to the page's width by its viewBox.
    # Markup: matplotlib escapes every text it writes (labels, who pulled a lever) as XML.
    return Markup(text[text.index("<svg") :].replace("<svg ", '<svg style="max-width: 100%; height: auto" ', 1))


# ---- postmortem.html ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InlinePlot:
    """One of the report's plots as the page shows it: its title and caption, and the chart as ``<svg>``."""

    name: str  # the plot's file stem in the report, here the id of its figure
    title: str
    caption: str
    svg: Markup


def html(
    summary: Summary,
    series: Series | None,
    journal: list[JournalEntry],
    scenario: Scenario,
    card: Scorecard,
    card_text: str,
) -> str:
    """postmortem.html: the draft with the plots inline; one file, no scripts, nothing fetched."""
    c = _content(summary, journal, scenario, card, card_text)
    plots = []
    if series is not None:
        figs = figures(summary, series, journal, card)
        plots = [InlinePlot(name, title, caption, svg(figs[name])) for name, title, caption in PLOTS]
    return report.jinja_env().get_template("postmortem.html.j2").render(p=c, plots=plots)


def write(
    run_dir: Path,
    summary: Summary,
    series: Series | None,
    journal: list[JournalEntry],
    scenario: Scenario,
    card: Scorecard,
    card_text: str,
) -> tuple[Path, Path]:
    """Write postmortem.md and postmortem.html into the run folder; returns their paths.
    ``series`` is None when the run saved no series.json: the page then says it has no plots."""
    run_dir = Path(run_dir)
    md_path, html_path = run_dir / "postmortem.md", run_dir / "postmortem.html"
    md_path.write_text(markdown(summary, journal, scenario, card, card_text), encoding="utf-8")
    html_path.write_text(html(summary, series, journal, scenario, card, card_text), encoding="utf-8")
    return md_path, html_path

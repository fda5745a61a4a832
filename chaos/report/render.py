"""report.md, report.html, the index page of a folder of runs, and the table ``make scenarios``
prints: what a report shows is built once (:func:`content`) and rendered twice."""

from __future__ import annotations

import functools
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from chaos import records
from chaos.records import (
    DashboardPhoto,
    ExpectationResult,
    Mark,
    PhaseFigures,
    RecordError,
    Series,
    SitePhoto,
    Summary,
)
from chaos.report.load import finite_or_none, load_run
from chaos.report.narrative import (
    comparison_sentence,
    explain,
    focus_phase,
    hurt_short,
    hurt_text,
    pct,
    recovery_short,
    recovery_text,
    reports_text,
    seconds_text,
)
from chaos.report.plots import PLOTS, figures

TEMPLATES = Path(__file__).parent.parent / "templates"
VERDICTS = ("held", "deviated", "aborted")
TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


# ---- the report's content, shared by report.md and report.html ----------------------------------


def _measured(x: float | None) -> str:
    return "none" if x is None else format(x, ".4g")


def _scale(summary: Summary) -> str | None:
    """The run's scale, worth saying only when it is not 1."""
    return None if summary.scale == 1 else _measured(summary.scale)


def _when(summary: Summary) -> str:
    started = summary.started
    return "-" if started is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(started))


def _headline(summary: Summary) -> str | None:
    name = focus_phase(summary)
    if name is None:
        return None
    phase = summary.phases[name]
    text = (
        f"In the {name} phase {pct(phase.web.failure_ratio)} of website journeys and "
        f"{pct(phase.app.failure_ratio)} of app journeys failed"
    )
    if phase.health_checks is not None:
        text += f", while health checks read {pct(phase.health_checks)}"
    return text + "."


@dataclass(frozen=True)
class PhaseRow:
    """A phase's figures as printed: the report's and the postmortem's phase tables."""

    name: str
    time: str  # "25 s to 130 s"
    web_failed: str
    web_degraded: str
    app_failed: str
    app_degraded: str
    users_hurt: str  # "38 / 5": web / app
    reports: str
    health: str


@dataclass(frozen=True)
class ExpectationRow:
    """An expectation as printed; ``held`` stays a bool for each renderer to word and style."""

    name: str
    phase: str
    measured: str
    wanted: str
    held: bool


@dataclass(frozen=True)
class TimelineRow:
    """A series mark as the report's timeline lists it."""

    at: str  # "60 s", or "60 s to 75 s" for a span
    kind: str
    label: str


@dataclass(frozen=True)
class Picture:
    """An image the report shows (a plot or a photograph), its path relative to the run folder."""

    file: str
    title: str
    caption: str


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows, as text ready to print; report.md and report.html both render it.
    A value of None, or an empty tuple, is a part the report leaves out."""

    title: str
    scenario: str
    run: str
    verdict: str
    problems: tuple[str, ...]
    when: str
    speed: str
    duration: str
    quick: bool
    scale: str | None
    headline: str | None
    teaches: str | None
    description: str | None
    incident_date: str | None
    facts: tuple[str, ...]
    expectations: tuple[ExpectationRow, ...]
    phases: tuple[PhaseRow, ...]
    hurt: str
    recovery: str
    comparison: str | None
    why: tuple[str, ...]
    timeline: tuple[TimelineRow, ...]
    plots: tuple[Picture, ...]
    dashboard: tuple[Picture, ...]
    files: tuple[str, ...]
    # Why nothing was measured, for a run that stopped before its timeline (its steady state did
    # not hold first, or it was interrupted): the report then leaves out the expectations, phases
    # and outcome. None for a run that played its timeline.
    unplayed: str | None = None

    @property
    def verdict_upper(self) -> str:
        """The verdict as the banner prints it: ``HELD``."""
        return self.verdict.upper()

    @property
    def verdict_class(self) -> str:
        """The CSS class suffix of the verdict's colour."""
        return self.verdict


def _phase_row(name: str, p: PhaseFigures) -> PhaseRow:
    return PhaseRow(
        name=name,
        time=f"{seconds_text(p.start)} to {seconds_text(p.end)}",
        web_failed=pct(p.web.failure_ratio),
        web_degraded=pct(p.web.degraded_ratio),
        app_failed=pct(p.app.failure_ratio),
        app_degraded=pct(p.app.degraded_ratio),
        users_hurt=f"{p.web.users_hurt} / {p.app.users_hurt}",
        reports=reports_text(p.user_reports),
        health=pct(p.health_checks),
    )


def phase_rows(summary: Summary) -> list[PhaseRow]:
    """One row of printable figures per phase of a run: the report's and the postmortem's phase table."""
    return [_phase_row(name, p) for name, p in summary.phases.items()]


def _expectation_row(e: ExpectationResult) -> ExpectationRow:
    return ExpectationRow(
        name=e.name, phase=e.phase, measured=_measured(e.measured), wanted=e.bound or "-", held=e.held
    )


def _timeline_row(m: Mark) -> TimelineRow:
    at = seconds_text(m.at) + ("" if m.end is None else f" to {seconds_text(m.end)}")
    return TimelineRow(at=at, kind=m.kind, label=m.label)


def content(summary: Summary, series: Series | None, run_dir: Path | None = None) -> ReportContent:
    """Everything a report shows, as text ready to print; report.md and report.html both render it.
    Without ``series`` (a run that stopped before its timeline) it has no timeline and no plots."""
    files = ["summary.json", "journal.json", "series.json"]
    return ReportContent(
        title=summary.title or summary.scenario,
        scenario=summary.scenario,
        run=run_dir.name if run_dir else Path(summary.run_dir).name,
        verdict=summary.verdict,
        problems=tuple(summary.problems),
        when=_when(summary),
        speed=_measured(summary.speed),
        duration=seconds_text(summary.duration),
        quick=summary.quick,
        scale=_scale(summary),
        headline=_headline(summary),
        teaches=summary.teaches,
        description=summary.description,
        incident_date=summary.incident_date,
        facts=tuple(summary.facts),
        expectations=tuple(_expectation_row(e) for e in summary.expectations),
        phases=tuple(phase_rows(summary)),
        hurt=hurt_text(summary),
        recovery=recovery_text(summary),
        comparison=comparison_sentence(summary),
        why=tuple(explain(summary)),
        timeline=() if series is None else tuple(_timeline_row(m) for m in sorted(series.marks, key=lambda m: m.at)),
        plots=()
        if series is None
        else tuple(Picture(file=f"plots/{name}.png", title=title, caption=caption) for name, title, caption in PLOTS),
        dashboard=tuple(dashboard_shots(summary, run_dir)),
        files=tuple(f for f in files if run_dir is None or (run_dir / f).exists()),
        unplayed=None if summary.started is not None else _unplayed(summary),
    )


def _unplayed(summary: Summary) -> str:
    """Why a run that never started its timeline measured nothing."""
    if summary.verdict == "aborted":
        return "The run was interrupted before its timeline started, so nothing was measured."
    return (
        "The timeline never started, so nothing was measured: the lab's steady state did not hold "
        "before it (journal.json has what each steady-state probe read)."
    )


def _reading(dash: DashboardPhoto) -> str:
    """One sentence of what the dashboard showed in a photograph."""
    # The panels are what the page's data attributes held: whatever the page put there, untyped.
    panels = dash.panels
    parts = []
    last = panels.get("journey_success", {}).get("last")
    if isinstance(last, dict) and last:
        parts.append(
            "journeys served: "
            + ", ".join(f"{k} {pct(finite_or_none(v))}" for k, v in sorted(last.items(), key=lambda kv: kv[0] != "web"))
        )
    status = panels.get("status_page", {})
    if status.get("text"):
        parts.append(f"status page: {status['text']} ({status.get('color', '?')})")
    alerts = panels.get("firing_alerts", {})
    if "rows" in alerts:
        firing = [r for r in alerts.get("rows_text") or [] if r]
        parts.append("alerts firing: " + ("; ".join(firing) if firing else "none"))
    return "; ".join(parts) + "." if parts else "No readings."


def _site_reading(site: SitePhoto) -> str:
    visits = site.visits
    if not visits:
        return "No visit settled."
    failed = [v for v in visits if v.state == "error"]
    first = visits[0]
    seen = f'"{first.message or ""}"' if first.state == "error" else f"a timeline of {first.tweets or 0} tweets."
    return (
        f"{len(visits)} new visitors opened the website: {len(failed)} got the error message, "
        f"{len(visits) - len(failed)} a timeline. The first (shown) saw {seen}"
    )


def dashboard_shots(summary: Summary, run_dir: Path | None) -> list[Picture]:
    """The run's photographs (dashboard and website) that exist, with what each showed."""
    out = []
    for shot in summary.dashboard:
        title = f"{shot.name}, at {seconds_text(shot.at)}"
        views: list[tuple[DashboardPhoto | SitePhoto | None, str]] = [
            (shot.dashboard, "the live dashboard"),
            (shot.site, "the website"),
        ]
        for view, what in views:
            if view is None or not view.file:
                continue
            if run_dir is not None and not (run_dir / view.file).is_file():
                continue
            caption = _reading(view) if isinstance(view, DashboardPhoto) else _site_reading(view)
            out.append(Picture(file=view.file, title=f"{title}: {what}", caption=caption))
    return out


def md_text(text: Any) -> str:
    """Text from a run's files made safe for a Markdown table cell or line."""
    # Only a "<" that could open a tag is escaped, so "<= 0.2" still reads as it is.
    return TAG_START.sub("&lt;", " ".join(str(text).split()).replace("|", "\\|"))


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines, every cell made safe with :func:`md_text`."""
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(md_text(c) for c in row) + " |" for row in rows),
        "",
    ]


def _md_opening(c: ReportContent) -> list[str]:
    """The title, the verdict, what ran and how, the problems and the headline."""
    scale = md_text(c.scale) if c.scale else None
    out = [f"# {md_text(c.title)}", "", f"**Verdict: {md_text(c.verdict_upper)}**", ""]
    out += [
        f"Scenario `{md_text(c.scenario)}`, run `{md_text(c.run)}`, started {c.when}, "
        f"{md_text(c.duration)} of scenario time at speed {md_text(c.speed)}"
        + (f", at scale {scale} ({scale} times the users, rate limits and capacities)" if scale else "")
        + (
            " (a quick run: shorter and lighter than the full scenario, so the figures are rougher)."
            if c.quick
            else "."
        ),
        "",
    ]
    out += [f"- {md_text(p)}" for p in c.problems] + ([""] if c.problems else [])
    if c.unplayed:
        out += [md_text(c.unplayed), ""]
    if c.headline:
        out += [md_text(c.headline), ""]
    return out


def _md_scenario(c: ReportContent) -> list[str]:
    """What the scenario teaches and the facts of the incident it replays, when it says."""
    out = []
    if c.teaches or c.description:
        out += ["## What it teaches", ""] + [md_text(t) + "\n" for t in (c.teaches, c.description) if t]
    if c.facts:
        date = f" ({md_text(c.incident_date)})" if c.incident_date else ""
        out += [f"## The incident it replays{date}", "", *(f"- {md_text(f)}" for f in c.facts), ""]
    return out


def _md_expectations(c: ReportContent) -> list[str]:
    rows = [[e.name, e.phase, e.measured, e.wanted, "yes" if e.held else "NO"] for e in c.expectations]
    return ["## Expectations", "", *md_table(["expectation", "phase", "measured", "wanted", "held"], rows)]


def _md_phases(c: ReportContent) -> list[str]:
    head = [
        "phase",
        "scenario time",
        "web failed",
        "web degraded",
        "app failed",
        "app degraded",
        "users hurt (web / app)",
        "reports",
        "health checks",
    ]
    rows = [
        [p.name, p.time, p.web_failed, p.web_degraded, p.app_failed, p.app_degraded, p.users_hurt, p.reports, p.health]
        for p in c.phases
    ]
    return ["## Phases", "", *md_table(head, rows)]


def _md_outcome(c: ReportContent) -> list[str]:
    """Users hurt, time to recover, the comparison with the big-bang rollout, and why web and app differed."""
    out = ["## Users hurt and time to recover", "", c.hurt, "", c.recovery, ""]
    if c.comparison:
        out += ["## Compared with the big-bang rollout", "", md_text(c.comparison), ""]
    return out + ["## Why web and app differed", "", " ".join(md_text(s) for s in c.why), ""]


def _md_dashboard(c: ReportContent) -> list[str]:
    if not c.dashboard:
        return []
    out = [
        "## The live dashboard and the website during the run",
        "",
        "Photographed in headless Chromium late in each phase, as a person watching, or visiting, would have seen them.",
        "",
    ]
    for d in c.dashboard:
        title = md_text(d.title)
        out += [f"### {title}", "", f"![{title}]({d.file})", "", md_text(d.caption), ""]
    return out


def _md_timeline(c: ReportContent) -> list[str]:
    if not c.timeline:
        return []
    rows = [[m.at, m.kind, m.label] for m in c.timeline]
    return ["## Timeline", "", *md_table(["scenario time", "what", "detail"], rows)]


def _md_plots_and_files(c: ReportContent) -> list[str]:
    out = ["## Plots", ""] if c.plots else []
    for p in c.plots:
        out += [f"### {p.title}", "", f"![{p.title}: {p.caption}]({p.file})", "", p.caption, ""]
    return out + ["## Files", "", *(f"- [{f}]({f})" for f in c.files), ""]


def markdown(c: ReportContent) -> str:
    """report.md from :func:`content`."""
    # A run that never started its timeline measured nothing: no figures to show, not even empty ones.
    measured = () if c.unplayed else (_md_expectations, _md_phases, _md_outcome)
    sections = (_md_opening, _md_scenario, *measured, _md_dashboard, _md_timeline, _md_plots_and_files)
    return "\n".join(line for section in sections for line in section(c))


@functools.cache
def jinja_env() -> jinja2.Environment:
    """The templates of the report pages and the postmortem (autoescaped; a missing value is an error)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html(c: ReportContent) -> str:
    """report.html from :func:`content`: one page, CSS inline, no scripts, nothing fetched from elsewhere."""
    return jinja_env().get_template("report.html.j2").render(r=c)


# ---- writing ------------------------------------------------------------------------------------


def render_run(run_dir: Path) -> Path:
    """Write ``plots/*.png``, ``report.md`` and ``report.html`` into a run folder; returns report.html."""
    run_dir = Path(run_dir)
    summary, series = load_run(run_dir)
    if series is not None:
        plots = run_dir / "plots"
        plots.mkdir(exist_ok=True)
        for name, fig in figures(summary, series).items():
            fig.savefig(plots / f"{name}.png", format="png")
    c = content(summary, series, run_dir)
    (run_dir / "report.md").write_text(markdown(c), encoding="utf-8")
    out = run_dir / "report.html"
    out.write_text(html(c), encoding="utf-8")
    return out


def _focus_figures(summary: Summary) -> tuple[str, float | None, float | None, dict[str, int] | None]:
    name = focus_phase(summary)
    if name is None:
        return "-", None, None, None
    phase = summary.phases[name]
    return name, phase.web.failure_ratio, phase.app.failure_ratio, phase.user_reports


@dataclass(frozen=True)
class IndexRow:
    """One run in ``index.html``: a link to its report (``href``), or a ``note`` saying why there is none."""

    run: str
    href: str | None
    note: str | None
    scenario: str
    title: str
    verdict: str
    phase: str
    web: str
    app: str
    reports: str
    hurt: str
    recovery: str
    when: str


def _unreadable_row(run_dir: Path, reason: str) -> IndexRow:
    return IndexRow(
        run=run_dir.name,
        href=None,
        # The folder is the row's own: the reason need not repeat where the folder is.
        note=reason.removeprefix(f"{run_dir}{os.sep}"),
        scenario=run_dir.name,
        title="",
        verdict="unknown",
        phase="-",
        web="-",
        app="-",
        reports="-",
        hurt="-",
        recovery="-",
        when="-",
    )


def _index_row(reports_dir: Path, run_dir: Path) -> IndexRow:
    try:
        summary = records.read(run_dir / "summary.json", Summary)
    except RecordError as e:
        return _unreadable_row(run_dir, str(e))
    phase, fw, fa, reports = _focus_figures(summary)
    report = run_dir / "report.html"
    href = urllib.parse.quote(Path(os.path.relpath(report, reports_dir)).as_posix()) if report.is_file() else None
    return IndexRow(
        run=run_dir.name,
        href=href,
        note=None if href else f"no report yet: failwhale report {run_dir}",
        scenario=summary.scenario,
        title=summary.title,
        verdict=summary.verdict,
        phase=phase,
        web=pct(fw),
        app=pct(fa),
        reports=reports_text(reports),
        hurt=hurt_short(summary),
        recovery=recovery_short(summary),
        when=_when(summary),
    )


def render_index(reports_dir: Path, run_dirs: list[Path]) -> Path:
    """Write ``reports_dir/index.html``: one row per run, linking its report.html; returns its path."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    rows = [_index_row(reports_dir.resolve(), Path(d).resolve()) for d in run_dirs]
    counts = _totals([r.verdict for r in rows])
    out = reports_dir / "index.html"
    out.write_text(jinja_env().get_template("index.html.j2").render(rows=rows, totals=counts), encoding="utf-8")
    return out


def _totals(verdicts: list[str]) -> str:
    n = len(verdicts)
    others = sorted(set(verdicts) - {"held", "deviated", "aborted"})
    text = f"{n} scenario{'' if n == 1 else 's'}, {verdicts.count('held')} held"
    for v in ["deviated", "aborted", *others]:
        if v in verdicts:
            text += f", {verdicts.count(v)} {v}"
    return text


def table(summaries: list[Summary]) -> str:
    """The text table ``make scenarios`` prints: one aligned row per run, then the totals line."""
    head = ["scenario", "verdict", "phase", "web failed", "app failed", "reports", "time to recover"]
    right = {3, 4, 6}
    rows = []
    for s in summaries:
        phase, fw, fa, reports = _focus_figures(s)
        rows.append(
            [
                s.scenario,
                s.verdict.upper(),
                phase,
                pct(fw),
                pct(fa),
                reports_text(reports),
                recovery_short(s),
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(_totals([s.verdict for s in summaries]))
    return "\n".join(lines)

"""The report of a run, made from its run folder alone: plots, ``report.md`` and ``report.html``.

A run folder (written by ``failwhale run``) holds ``summary.json`` (the verdict and the figures
of each phase) and ``series.json`` (the time series, see :mod:`chaos.series`), both read as their
records (:class:`chaos.records.Summary`, :class:`chaos.records.Series`). Neither the lab nor
Prometheus is needed to turn them into a report, so a report can be made again at any time, on
any machine: ``failwhale report RUN_DIR`` calls :func:`render_run`.

:func:`render_index` writes the ``index.html`` of a folder of runs and :func:`table` the plain
text table that ``make scenarios`` prints at the end.

Every sentence that interprets a run (:func:`explain`) is built from the run's figures, so it
says something else when the figures say something else. A file of an older format is refused
with one line naming it (:class:`ReportError`); the index lists such a run with the reason.
"""

from __future__ import annotations

import functools
import math
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.typing import LineStyleType

from chaos import records
from chaos.errors import BadInput
from chaos.measure import CLIENTS
from chaos.records import (
    DashboardPhoto,
    ExpectationResult,
    Mark,
    PhaseFigures,
    PhaseSpan,
    RecordError,
    Series,
    SitePhoto,
    Summary,
)

TEMPLATES = Path(__file__).with_name("templates")
VERDICTS = ("held", "deviated", "aborted")
CLIENT_NAMES = {"web": "website", "app": "app"}
# One colour per client in every plot, so a reader learns them once.
CLIENT_COLOURS = {"web": "#1f77b4", "app": "#ff7f0e"}
OTHER_COLOUR = "#7f7f7f"
CATEGORY_COLOURS = {"website": CLIENT_COLOURS["web"], "app": CLIENT_COLOURS["app"], "server_connection": OTHER_COLOUR}
CATEGORY_SHORT = {"website": "website", "app": "app", "server_connection": "conn"}
HEALTH_COLOURS = {"up": "#2ca02c", "ready": "#006d2c"}
VERSION_COLOURS = {"v1": "#8c564b", "v2": "#e377c2"}
# For lines that are not clients (routes, versions): never the clients' blue and orange.
PALETTE = (
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
)
# kind -> (colour, line style, legend name). Marks are greys and black, so every colour on a chart
# is data; a mark with an ``end`` (a fault until its TTL lapses) is a pale amber span instead.
# colour, line style, legend name
MARKS: dict[str, tuple[str, LineStyleType, str]] = {
    "rollout": ("#555555", "-", "rollout"),
    "wave": ("#555555", "--", "rollout wave"),
    "guard": ("#000000", "-.", "guard rolled back"),
    "rollback": ("#000000", "-", "rollback"),
    "fault": ("#b07d00", ":", "fault"),
    "kill": ("#000000", ":", "process killed"),
    "restart": ("#777777", ":", "process restarted"),
}
FAULT_SPAN = "#e6a700"
LINE_ORDER = ("web", "website", "app", "server_connection", "up", "ready")
MARK_FONT_PT = 7
PHASE_SHADES = ("#e8e8e8", "#f4f4f4")
X_LABEL = "scenario time (s)"
UNITS = {"ratio": "share, 0 to 1", "per_s": "per second", "seconds": "seconds", "count": "count"}
# How the client saw a journey go wrong, as a verb phrase: "<n> journeys ...".
REASONS = {
    "rate_limited": 'were answered 429 "Rate limit exceeded"',
    "server_error": "got 5xx server errors",
    "timeout": "gave up waiting for an answer",
    "connection_error": "could not connect at all",
    "unauthorized": "were turned away as logged out (401)",
    "client_error": "got another 4xx error",
    "bad_response": "got an answer they could not use",
}
DEGRADED = {
    "web": "worked only after a page reload",
    "app": "showed stale content from its cache or worked only after a retry",
}
# Below SMALL both clients are fine; within CLOSE of each other they fared alike.
SMALL, CLOSE = 0.05, 0.05
TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
TROUBLE_BELOW = 0.95  # chaos.series.time_to_recover's threshold, named in the report
PLOTS = (
    (
        "journeys",
        "Journeys by client",
        "Share of journeys not failed (solid) and fully ok (dashed) for website and app users; the gap "
        "between a client's two lines is its degraded journeys (stale content, or only after a retry).",
    ),
    (
        "errors_by_route",
        "API errors by route",
        "Share of the API's answers that were errors (5xx or 429), for each route that had any.",
    ),
    (
        "reports",
        "User reports",
        "User reports filed since scenario time 0, by what they were about: the website, the app, or "
        "not reaching the service at all.",
    ),
    (
        "health_vs_users",
        "Health checks against users",
        "Share of processes up and ready (what a status page reads) next to the share of each client's "
        "journeys not failed (what users live through).",
    ),
    ("latency", "Latency", "95th percentile journey time by client, and 95th percentile API answer time, in seconds."),
    (
        "blast_radius",
        "Blast radius",
        "Users with at least one failed journey since time 0, by client; below, how many API replicas "
        "ran each architecture version.",
    ),
)
R = TypeVar("R", bound=records.VersionedFile)


class ReportError(BadInput):
    """A run folder whose files cannot make a report; the message is one line naming the file."""


# ---- reading a run folder ---------------------------------------------------------------------


def is_num(x: Any) -> bool:
    """Whether a value is a number (a bool is not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def finite_or_none(x: Any) -> float | None:
    """A value as a finite float, or None (absent, text, NaN or infinite): for what a page's data
    attributes held (the dashboard photographs' readings), which no record types."""
    return float(x) if is_num(x) and math.isfinite(x) else None


def _read(path: Path, model: type[R]) -> R:
    # The same line, as the report's own error: what `failwhale report` catches for each run folder.
    try:
        return records.read(path, model)
    except RecordError as e:
        raise ReportError(str(e)) from None


def load_run(run_dir: Path) -> tuple[Summary, Series]:
    """A run folder's summary and series; a :class:`ReportError` line naming the file if not usable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a run folder (no such directory)")
    summary = _read(run_dir / "summary.json", Summary)
    path = run_dir / "series.json"
    if not path.exists():
        raise ReportError(f"{path}: no such file (runs made before series were exported cannot be reported)")
    return summary, _read(path, Series)


# ---- plots --------------------------------------------------------------------------------------


@dataclass
class Frame:
    """What every time chart of a run shares: the time axis, its phases and its marks."""

    start: float
    end: float
    phases: list[PhaseSpan]
    marks: list[Mark]


Lines = dict[str, tuple[list[float], list[float]]]


def _lines(series: Series, name: str) -> Lines:
    entry = series.series.get(name)
    lines = entry.lines if entry is not None else {}
    out: Lines = {}
    # Web before app (and website before app in reports) in every legend, then the rest by name.
    labels = sorted(lines, key=lambda k: (LINE_ORDER.index(k) if k in LINE_ORDER else len(LINE_ORDER), k))
    for label in labels:
        points = lines[label]
        if points:
            # NaN, not None: matplotlib leaves a gap there instead of joining across it.
            out[label] = ([float(t) for t, _ in points], [math.nan if v is None else float(v) for _, v in points])
    return out


def _finite(lines: Lines) -> list[float]:
    return [v for _, ys in lines.values() for v in ys if math.isfinite(v)]


def series_times(series: Series) -> list[float]:
    """Every point's time (scenario seconds) in a run's series."""
    return [t for entry in series.series.values() for pts in entry.lines.values() for t, _ in pts]


def _frame(summary: Summary, series: Series) -> Frame:
    phases = series.phases or [PhaseSpan(name=n, start=p.start, end=p.end) for n, p in summary.phases.items()]
    times = series_times(series)
    end = series.duration or summary.duration or max(times, default=1.0)
    start = min(0.0, min(times, default=0.0))
    return Frame(start, max(end, start + 1.0), phases, series.marks)


def _axes(ax: Axes, frame: Frame, title: str, ylabel: str) -> None:
    ax.set_title(title, pad=16)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(ylabel)
    ax.set_xlim(frame.start, frame.end)
    ax.grid(True, alpha=0.3, linewidth=0.5)
    for i, p in enumerate(frame.phases):
        ax.axvspan(p.start, p.end, color=PHASE_SHADES[i % 2], alpha=0.8, linewidth=0, zorder=0)
        ax.text(
            (p.start + p.end) / 2,
            1.005,
            p.name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#555555",
        )


def _mark_text(mark: Mark) -> str:
    label = mark.label or mark.kind
    if mark.kind == "wave":  # "wave 1/3: web, edge, ..." -> "wave 1/3"; the list is in the report
        label = label.split(":")[0]
    return label if len(label) <= 24 else label[:23] + "…"


def _marks(ax: Axes, frame: Frame) -> list[Artist]:
    """Draw the marks; returns one legend entry per kind drawn."""
    legend: dict[str, Artist] = {}
    last, down = None, 0.0
    for m in sorted(frame.marks, key=lambda m: m.at):
        if m.kind not in MARKS:  # notes and alerts are narrative: listed in the report, not drawn
            continue
        colour, style, name = MARKS[m.kind]
        if m.end is not None:
            ax.axvspan(m.at, m.end, color=FAULT_SPAN, alpha=0.18, linewidth=0, zorder=1)
            legend.setdefault(name, Patch(facecolor=FAULT_SPAN, alpha=0.3, label=name))
        else:
            ax.axvline(m.at, color=colour, linestyle=style, linewidth=1, zorder=2)
            legend.setdefault(name, Line2D([], [], color=colour, linestyle=style, linewidth=1, label=name))
        # Marks close together would print their labels over each other: each one starts below
        # the previous one's end, measured in points so it holds whatever the chart's height.
        text = _mark_text(m)
        close = last is not None and m.at - last < 0.04 * (frame.end - frame.start)
        down = down + 4 if close else 4
        last = m.at
        ax.annotate(
            text,
            xy=(m.at, 1.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(-2, -down),
            textcoords="offset points",
            rotation=90,
            fontsize=MARK_FONT_PT,
            ha="right",
            va="top",
            color=colour,
            annotation_clip=True,
            clip_on=True,
        )
        down += MARK_FONT_PT * 0.62 * len(text)
    return list(legend.values())


def _colour(label: str, colours: dict[str, str], i: int) -> str:
    return colours.get(label, PALETTE[i % len(PALETTE)])


def _plot(ax: Axes, lines: Lines, colours: dict[str, str], name: str = "{label}", **style: Any) -> list[Artist]:
    handles: list[Artist] = []
    for i, (label, (xs, ys)) in enumerate(lines.items()):
        handles += ax.plot(xs, ys, color=_colour(label, colours, i), label=name.format(label=label or "all"), **style)
    return handles


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="#888888")


def _finish(ax: Axes, frame: Frame, handles: list[Artist], *, has_data: bool, empty: str = "no data") -> None:
    handles = handles + _marks(ax, frame)
    if not has_data:
        _note(ax, empty)
    if handles:  # a legend with nothing in it is a matplotlib warning, and useless
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _figure(rows: int = 1) -> tuple[Figure, list[Axes]]:
    # Figure, not pyplot: no global state, no GUI backend; savefig picks Agg for PNG.
    fig = Figure(figsize=(10, 4.6 * rows if rows == 1 else 3.6 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _ratio_axis(ax: Axes) -> None:
    ax.set_ylim(-0.02, 1.05)


def _journeys(frame: Frame, series: Series) -> Figure:
    fig, (ax,) = _figure()
    _axes(
        ax,
        frame,
        "Journeys not failed (solid) and fully ok (dashed), by client",
        f"share of journeys ({UNITS['ratio']})",
    )
    not_failed, ok = _lines(series, "journeys_not_failed"), _lines(series, "journeys_ok")
    handles = _plot(ax, not_failed, CLIENT_COLOURS, "{label}: not failed", linewidth=1.8)
    handles += _plot(ax, ok, CLIENT_COLOURS, "{label}: fully ok", linewidth=1.2, linestyle="--")
    _ratio_axis(ax)
    _finish(ax, frame, handles, has_data=bool(_finite(not_failed) or _finite(ok)))
    return fig


def _errors_by_route(frame: Frame, series: Series) -> Figure:
    fig, (ax,) = _figure()
    _axes(ax, frame, "API answers that were errors (5xx or 429), by route", f"share of answers ({UNITS['ratio']})")
    lines = _lines(series, "api_errors_by_route")
    failing = {r: xy for r, xy in lines.items() if any(v > 0 for v in xy[1] if math.isfinite(v))}
    handles = _plot(ax, failing, {}, linewidth=1.4)
    _ratio_axis(ax)
    empty = "no route answered with an error (5xx or 429)" if _finite(lines) else "no data"
    _finish(ax, frame, handles, has_data=bool(failing), empty=empty)
    return fig


def _reports(frame: Frame, series: Series) -> Figure:
    fig, (ax,) = _figure()
    _axes(ax, frame, "User reports filed since time 0, by category", f"reports ({UNITS['count']})")
    lines = _lines(series, "user_reports")
    handles = _plot(ax, lines, CATEGORY_COLOURS, linewidth=1.8, drawstyle="steps-post")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax, frame, handles, has_data=bool(_finite(lines)))
    return fig


def _health_vs_users(frame: Frame, series: Series) -> Figure:
    fig, (ax,) = _figure()
    _axes(
        ax,
        frame,
        "Health checks against users: processes up and ready, journeys not failed",
        f"share ({UNITS['ratio']})",
    )
    health, users = _lines(series, "health_checks"), _lines(series, "journeys_not_failed")
    # Both checks usually sit at 1 together: a wide pale band and a thin dashed line keep both visible.
    handles = _plot(
        ax,
        {k: v for k, v in health.items() if k != "ready"},
        HEALTH_COLOURS,
        "health check: {label}",
        linewidth=5.0,
        alpha=0.45,
    )
    handles += _plot(
        ax,
        {k: v for k, v in health.items() if k == "ready"},
        HEALTH_COLOURS,
        "health check: {label}",
        linewidth=1.5,
        linestyle="--",
    )
    handles += _plot(ax, users, CLIENT_COLOURS, "{label} journeys not failed", linewidth=1.6)
    _ratio_axis(ax)
    _finish(ax, frame, handles, has_data=bool(_finite(health) or _finite(users)))
    return fig


def _latency(frame: Frame, series: Series) -> Figure:
    fig, (ax,) = _figure()
    _axes(ax, frame, "Journey time and API answer time, 95th percentile", f"time ({UNITS['seconds']})")
    journeys, api = _lines(series, "journey_p95"), _lines(series, "api_p95")
    handles = _plot(ax, journeys, CLIENT_COLOURS, "{label} journey p95", linewidth=1.6)
    handles += _plot(ax, api, {label: "#444444" for label in api}, "API answer p95", linewidth=1.2, linestyle="--")
    values = [v for v in _finite(journeys) + _finite(api) if v > 0]
    # Timeouts make the slowest points hundreds of times the usual: a log axis keeps both readable.
    if values and max(values) / min(values) > 30:
        ax.set_yscale("log")
    _finish(ax, frame, handles, has_data=bool(values))
    return fig


def _blast_radius(frame: Frame, series: Series) -> Figure:
    fig, (top, bottom) = _figure(rows=2)
    _axes(top, frame, "Users who had a failed journey, since time 0", f"users ({UNITS['count']})")
    hurt = _lines(series, "users_hurt")
    handles = _plot(top, hurt, CLIENT_COLOURS, "{label} users hurt", linewidth=1.8, drawstyle="steps-post")
    top.set_ylim(bottom=0)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(top, frame, handles, has_data=bool(_finite(hurt)))
    _axes(bottom, frame, "API replicas by architecture version", f"replicas ({UNITS['count']})")
    versions = _lines(series, "api_versions")
    handles = _plot(bottom, versions, VERSION_COLOURS, "{label}", linewidth=1.8, drawstyle="steps-post")
    bottom.set_ylim(bottom=0)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(bottom, frame, handles, has_data=bool(_finite(versions)))
    return fig


def figures(summary: Summary, series: Series) -> dict[str, Figure]:
    """Every plot of a run, by file stem (``journeys`` -> ``plots/journeys.png``)."""
    frame = _frame(summary, series)
    draw = {
        "journeys": _journeys,
        "errors_by_route": _errors_by_route,
        "reports": _reports,
        "health_vs_users": _health_vs_users,
        "latency": _latency,
        "blast_radius": _blast_radius,
    }
    return {name: draw[name](frame, series) for name, _, _ in PLOTS}


# ---- words from figures -------------------------------------------------------------------------


def pct(x: float | None) -> str:
    """0.9542 -> '95.4%', 1.0 -> '100%', None -> '-'."""
    if x is None:
        return "-"
    text = f"{100 * x:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def seconds_text(x: float | None) -> str:
    """Scenario seconds as a report prints them (``12.5 s``), ``-`` for none."""
    return "-" if x is None else f"{round(x, 1):g} s"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _users(n: int) -> str:
    return "no users" if not n else _count(n, "user")


def reports_text(counts: dict[str, int] | None) -> str:
    """Reports by category, short: 'website 17 · app 3 · conn 0'."""
    if not counts:
        return "-"
    return " · ".join(f"{CATEGORY_SHORT.get(k, k)} {v}" for k, v in counts.items())


def focus_phase(summary: Summary) -> str | None:
    """The phase the headline figures come from: the summary's, else the worst one for the website."""
    phases = summary.phases
    if summary.focus_phase in phases:
        return summary.focus_phase
    if not phases:
        return None
    return max(phases, key=lambda n: phases[n].web.failure_ratio or -1.0)


def _who_failed_more(name: str, fw: float, fa: float) -> str:
    hi, lo = max(fw, fa), min(fw, fa)
    if hi < SMALL:
        return (
            f"Web and app did not differ in the {name} phase: both did fine, with {pct(fw)} of website "
            f"journeys and {pct(fa)} of app journeys failed."
        )
    if hi - lo < CLOSE:
        return (
            f"Web and app did not differ much in the {name} phase: {pct(fw)} of website journeys and "
            f"{pct(fa)} of app journeys failed, {100 * (hi - lo):.1f} percentage points apart."
        )
    worse, better = ("web", "app") if fw > fa else ("app", "web")
    times = ""
    if lo > 0 and hi / lo >= 2:
        times = f" ({hi / lo:.0f} times as often)" if hi / lo >= 10 else f" ({hi / lo:.1f} times as often)"
    return (
        f"{CLIENT_NAMES[worse].capitalize()} users failed more often than {CLIENT_NAMES[better]} users in the "
        f"{name} phase: {pct(hi)} of {CLIENT_NAMES[worse]} journeys failed against {pct(lo)} of "
        f"{CLIENT_NAMES[better]} journeys{times}."
    )


def _gloss(reason: str) -> str:
    return REASONS.get(reason, f'ended as "{reason}"')


def _dominant(reasons: dict[str, int]) -> list[tuple[str, int]]:
    counts = [(r, n) for r, n in reasons.items() if n > 0]
    return sorted(counts, key=lambda rn: -rn[1])


def _reason_sentences(phase: PhaseFigures, differed: bool) -> list[str]:
    out, top = [], {}
    for client in CLIENTS:
        ranked = _dominant(phase.reasons.get(client, {}))
        if not ranked:
            continue
        total = sum(n for _, n in ranked)
        (first, n1), rest = ranked[0], ranked[1:]
        top[client] = first
        text = (
            f"All {total} {CLIENT_NAMES[client]} journeys that went wrong {_gloss(first)}"
            if n1 == total
            else f"Of the {total} {CLIENT_NAMES[client]} journeys that went wrong, {n1} ({pct(n1 / total)}) {_gloss(first)}"
        )
        if rest and rest[0][1] / total >= 0.1:
            text += f" and {rest[0][1]} ({pct(rest[0][1] / total)}) {_gloss(rest[0][0])}"
        out.append(text + ".")
    if differed and len(top) == 2 and top["web"] == top["app"]:
        out.append(
            "Both clients mostly met the same trouble, so the gap comes from how often each ran into it "
            "and what each did about it."
        )
    return out


def _degraded_sentences(phase: PhaseFigures) -> list[str]:
    out = []
    for client in CLIENTS:
        figures = phase.client(client)
        dr, fr = figures.degraded_ratio, figures.failure_ratio
        if dr is None or fr is None or dr + fr < 0.01:
            continue
        share, owner = dr / (dr + fr), f"the {CLIENT_NAMES[client]}'s"
        what = f"{pct(dr)} of its journeys {DEGRADED.get(client, 'were degraded')} and {pct(fr)} failed"
        if share >= 0.5:
            out.append(f"Most of {owner} trouble was degraded rather than failed: {what}.")
        elif share >= 0.1:
            out.append(f"{pct(share).capitalize()} of {owner} trouble was degraded rather than failed: {what}.")
        elif fr >= SMALL:
            out.append(f"Almost all of {owner} trouble was outright failure: {what}.")
    return out


def _reports_sentence(name: str, phase: PhaseFigures) -> list[str]:
    counts = phase.user_reports
    total = sum(counts.values())
    if not counts:
        return []
    if total == 0:
        return [f"Nobody filed a user report in the {name} phase."]
    words = {"website": "about the website", "app": "about the app", "server_connection": "could not connect"}
    detail = ", ".join(f"{n} {words.get(k, k)}" for k, n in counts.items())
    if "website" not in counts:
        return [f"{total} user reports were filed in the {name} phase ({detail})."]
    return [
        f"{pct(counts['website'] / total)} of the {total} user reports filed in the {name} phase were about "
        f"the website ({detail})."
    ]


def _hurt_sentence(phase: PhaseFigures) -> list[str]:
    return [
        f"{_count(phase.web.users_hurt, 'website user')} and {_count(phase.app.users_hurt, 'app user')} had their "
        "first failed journey in this phase."
    ]


def _health_sentence(phase: PhaseFigures, fw: float, fa: float) -> list[str]:
    health = phase.health_checks
    if health is None:
        return []
    worse = "web" if fw >= fa else "app"
    if health < 0.99:
        return [f"Health checks fell to {pct(health)}: the processes themselves were in trouble, not only the users."]
    if max(fw, fa) < SMALL:
        return [f"Health checks read {pct(health)}, and this time users agreed."]
    return [
        f"Health checks read {pct(health)} all the while: by their own account every process was fine while "
        f"{pct(max(fw, fa))} of {CLIENT_NAMES[worse]} journeys failed."
    ]


def explain(summary: Summary) -> list[str]:
    """Why web and app differed, in sentences made from the focus phase's figures."""
    name = focus_phase(summary)
    if name is None:
        return ["The summary has no phase figures, so there is nothing to compare web and app with."]
    phase = summary.phases[name]
    fw, fa = phase.web.failure_ratio, phase.app.failure_ratio
    if fw is None or fa is None:
        return [f"The {name} phase has no journey figures for both clients, so web and app cannot be compared."]
    first = _who_failed_more(name, fw, fa)
    differed = max(fw, fa) >= SMALL and abs(fw - fa) >= CLOSE
    return [
        first,
        *_reason_sentences(phase, differed),
        *_degraded_sentences(phase),
        *_hurt_sentence(phase),
        *_reports_sentence(name, phase),
        *_health_sentence(phase, fw, fa),
    ]


def comparison_sentence(summary: Summary) -> str | None:
    """'This rollout hurt 3 users; the big-bang rollout of X (run Y) hurt 41: 13.7 times fewer.'"""
    c = summary.comparison
    if c is None:
        return None
    ratio = c.times_fewer
    them = f"the big-bang rollout of {c.against}"
    if c.against_run:
        them += f" (run {c.against_run})"
    text = f"This rollout hurt {_users(c.users_hurt)}; {them} hurt {c.against_users_hurt}"
    if ratio is None or ratio <= 0:
        return text + "."
    if abs(ratio - 1) < 0.05:
        return text + ": about as many."
    return text + (f": {ratio:.1f} times fewer." if ratio > 1 else f": {1 / ratio:.1f} times more.")


def recovery_short(summary: Summary) -> str:
    """'105 s', '-' (users never dropped, or the run measured nothing), or 'not recovered'."""
    trouble = summary.trouble
    if trouble is None:
        return "-"
    return "not recovered" if trouble.seconds is None else seconds_text(trouble.seconds)


def _recovery_text(summary: Summary) -> str:
    trouble = summary.trouble
    rule = f"either client's share of journeys not failed below {pct(TROUBLE_BELOW)}"
    if trouble is None:
        return f"Time to recover: none needed; users never dropped below the steady state ({rule})."
    start, end, seconds = trouble.start, trouble.end, trouble.seconds
    if seconds is None:
        return f"Time to recover: not recovered; trouble ({rule}) began at {seconds_text(start)} and lasted to the end of the run."
    return f"Time to recover: {seconds_text(seconds)} of scenario time, from {seconds_text(start)} to {seconds_text(end)} ({rule})."


def _hurt_text(summary: Summary) -> str:
    hurt = summary.users_hurt  # empty when the run never started: nobody was hurt
    parts = [_count(hurt.get(c, 0), f"{CLIENT_NAMES[c]} user") for c in CLIENTS]
    return f"Users hurt (a failed journey at least once in the run): {' and '.join(parts)}."


def hurt_short(summary: Summary) -> str:
    """Users hurt by client, short: 'web 41 · app 5'."""
    hurt = summary.users_hurt
    return " · ".join(f"{c} {hurt.get(c, 0)}" for c in CLIENTS)


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


def content(summary: Summary, series: Series, run_dir: Path | None = None) -> ReportContent:
    """Everything a report shows, as text ready to print; report.md and report.html both render it."""
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
        hurt=_hurt_text(summary),
        recovery=_recovery_text(summary),
        comparison=comparison_sentence(summary),
        why=tuple(explain(summary)),
        timeline=tuple(_timeline_row(m) for m in sorted(series.marks, key=lambda m: m.at)),
        plots=tuple(Picture(file=f"plots/{name}.png", title=title, caption=caption) for name, title, caption in PLOTS),
        dashboard=tuple(dashboard_shots(summary, run_dir)),
        files=tuple(f for f in files if run_dir is None or (run_dir / f).exists()),
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
    out = ["## Plots", ""]
    for p in c.plots:
        out += [f"### {p.title}", "", f"![{p.title}: {p.caption}]({p.file})", "", p.caption, ""]
    return out + ["## Files", "", *(f"- [{f}]({f})" for f in c.files), ""]


def markdown(c: ReportContent) -> str:
    """report.md from :func:`content`."""
    sections = (
        _md_opening,
        _md_scenario,
        _md_expectations,
        _md_phases,
        _md_outcome,
        _md_dashboard,
        _md_timeline,
        _md_plots_and_files,
    )
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

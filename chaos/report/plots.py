"""The report's charts, drawn from a run's series with matplotlib (no pyplot, no GUI): one time
axis, the run's phases shaded and its marks drawn on every chart, web and app in the same colours
throughout."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.typing import LineStyleType

from chaos.records import (
    Mark,
    PhaseSpan,
    Series,
    Summary,
)

# One colour per client in every plot, so a reader learns them once.
CLIENT_COLOURS = {"web": "#1f77b4", "app": "#ff7f0e"}
OTHER_COLOUR = "#7f7f7f"
CATEGORY_COLOURS = {"website": CLIENT_COLOURS["web"], "app": CLIENT_COLOURS["app"], "server_connection": OTHER_COLOUR}
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

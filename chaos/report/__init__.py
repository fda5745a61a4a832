"""The report of a run, made from its run folder alone: plots, ``report.md`` and ``report.html``.

A run folder (written by ``failwhale run``) holds ``summary.json`` (the verdict and the figures
of each phase) and ``series.json`` (the time series, see :mod:`chaos.series`), both read as their
records (:class:`chaos.records.Summary`, :class:`chaos.records.Series`). Neither the lab nor
Prometheus is needed to turn them into a report, so a report can be made again at any time, on
any machine: ``failwhale report RUN_DIR`` calls :func:`render_run`.

The rooms: ``load`` reads a run folder (a file of an older format is one line naming it,
:class:`ReportError`), ``plots`` draws the charts, ``narrative`` turns figures into sentences
(each says something else when the figures say something else), and ``render`` builds what a
report shows once and writes it as Markdown and HTML, the index page of a folder of runs
(:func:`render_index`) and the table ``make scenarios`` prints (:func:`table`). The names below
are the report's public interface, for the command line, the postmortem and the tests.
"""

from chaos.report.load import ReportError, finite_or_none, is_num, load_run
from chaos.report.narrative import (
    comparison_sentence,
    explain,
    focus_phase,
    hurt_short,
    pct,
    recovery_short,
    reports_text,
    seconds_text,
)
from chaos.report.plots import PLOTS, figures, series_times
from chaos.report.render import (
    IndexRow,
    PhaseRow,
    ReportContent,
    content,
    dashboard_shots,
    html,
    jinja_env,
    markdown,
    md_table,
    md_text,
    phase_rows,
    render_index,
    render_run,
    table,
)

__all__ = [
    "PLOTS",
    "IndexRow",
    "PhaseRow",
    "ReportContent",
    "ReportError",
    "comparison_sentence",
    "content",
    "dashboard_shots",
    "explain",
    "figures",
    "finite_or_none",
    "focus_phase",
    "html",
    "hurt_short",
    "is_num",
    "jinja_env",
    "load_run",
    "markdown",
    "md_table",
    "md_text",
    "pct",
    "phase_rows",
    "recovery_short",
    "render_index",
    "render_run",
    "reports_text",
    "series_times",
    "seconds_text",
    "table",
]

"""The time series a run's report is drawn from, exported from Prometheus into the run folder.

The lab's Prometheus keeps its data only until the next lab starts, so before a run stops the
lab it saves everything the report needs as ``series.json`` in the run folder. The report is
then made from the run folder alone, at any time, on any machine.

``series.json`` is :class:`chaos.records.Series` (its JSON Schema: ``chaos/schemas/series.schema.json``):
the run's phases, its marks (what happened when) and, for each series, one line per label of
``[scenario_s, value or null]`` points.

Times are scenario seconds (wall seconds since ``t0`` times ``speed``), the axis every scenario
file speaks in. Series (see :data:`QUERIES`): ``journeys_not_failed`` and ``journeys_ok`` (share
of journeys by client), ``api_errors_by_route`` (share of API answers that were 5xx or 429, by
route), ``user_reports`` (reports filed since scenario time 0, by category), ``users_hurt`` (users
with a failed journey since time 0, by client), ``health_checks`` (share of service processes
answering Prometheus, and share reporting ready: what a status page reads), ``journey_p95``
(95th percentile journey time by client), ``api_p95`` (95th percentile API answer time),
``users`` (simulated users by client) and ``api_versions`` (API replicas on each architecture
version). Mark kinds: ``rollout``, ``wave``, ``guard`` (a guard rolled the change back),
``rollback``, ``fault`` (with ``end``, when its TTL lapses), ``kill``, ``restart``, ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from chaos.promql import query_range
from chaos.records import Alert, JournalEntry, Mark, RestartEntry, SeriesEntry, StepEntry, Trouble

RATE = "[{w}]"  # filled in per run: see rate_window
# name -> (title, unit, PromQL, label that names each line)
QUERIES: dict[str, tuple[str, str, str, str]] = {
    "journeys_not_failed": (
        "Journeys not failed",
        "ratio",
        f'sum by (client) (rate(failwhale_journeys_total{{outcome!="failed"}}{RATE}))'
        f" / sum by (client) (rate(failwhale_journeys_total{RATE}))",
        "client",
    ),
    "journeys_ok": (
        "Journeys fully ok (not failed, not stale)",
        "ratio",
        f'sum by (client) (rate(failwhale_journeys_total{{outcome="ok"}}{RATE}))'
        f" / sum by (client) (rate(failwhale_journeys_total{RATE}))",
        "client",
    ),
    "api_errors_by_route": (
        "API answers that were errors (5xx or 429), by route",
        "ratio",
        f'sum by (route) (rate(failwhale_http_requests_total{{service="api",code=~"5..|429"}}{RATE}))'
        f' / sum by (route) (rate(failwhale_http_requests_total{{service="api"}}{RATE}))',
        "route",
    ),
    "user_reports": (
        "User reports filed, by category",
        "count",
        "sum by (category) (failwhale_user_reports_total)",
        "category",
    ),
    "users_hurt": ("Users who had a failed journey", "count", "sum by (client) (failwhale_users_hurt_total)", "client"),
    "health_checks": (
        "Health checks",
        "ratio",
        'label_replace(avg(up{job!~"loadgen|chaos"}), "check", "up", "", "")'
        ' or label_replace(avg(failwhale_service_ready), "check", "ready", "", "")',
        "check",
    ),
    "journey_p95": (
        "Journey time, 95th percentile",
        "seconds",
        f"histogram_quantile(0.95, sum by (client, le) (rate(failwhale_journey_duration_seconds_bucket{RATE})))",
        "client",
    ),
    "api_p95": (
        "API answer time, 95th percentile",
        "seconds",
        f'label_replace(histogram_quantile(0.95, sum by (le) (rate(failwhale_http_request_duration_seconds_bucket{{service="api"}}{RATE}))),'
        ' "tier", "api", "", "")',
        "tier",
    ),
    "users": ("Simulated users", "count", "sum by (client) (failwhale_loadgen_users)", "client"),
    "api_versions": (
        "API replicas by architecture version",
        "count",
        'count by (version) (failwhale_deploy_info{service="api"})',
        "version",
    ),
}
# Counters shown as "since scenario time 0": the value at t0 is subtracted.
SINCE_START = ("user_reports", "users_hurt")


def rate_window(speed: float) -> str:
    """Wall seconds of each rate: about ten scenario seconds (so onset and recovery show where
    they happened), but never under three scrapes."""
    return f"{max(3.0, 10.0 / speed):g}s"


def _value(text: str) -> float | None:
    v = float(text)
    return None if math.isnan(v) or math.isinf(v) else round(v, 5)


def export(prometheus_url: str, *, t0: float, end: float, speed: float, lead_s: float = 0.0) -> dict[str, SeriesEntry]:
    """Every series from ``lead_s`` wall seconds before t0 to ``end``, on the scenario-time axis."""
    step_wall = max(0.25, 1.0 / speed)  # about one point per scenario second, at most 4 a wall second
    start = t0 - lead_s
    out: dict[str, SeriesEntry] = {}
    window = rate_window(speed)
    for name, (title, unit, promql, label) in QUERIES.items():
        promql = promql.replace("{w}", window)
        lines: dict[str, list[tuple[float, float | None]]] = {}
        for s in query_range(prometheus_url, promql, start, end, step_wall):
            key = s["metric"].get(label, "")
            pairs = [(round((float(t) - t0) * speed, 3), _value(v)) for t, v in s["values"]]
            if name in SINCE_START:
                base = next((v for t, v in pairs if t >= 0 and v is not None), 0.0)
                base = next((v for t, v in reversed(pairs) if t <= 0 and v is not None), base)
                pairs = [(t, None if v is None else max(0.0, v - base)) for t, v in pairs]
            lines[key] = pairs
        out[name] = SeriesEntry.model_validate({"title": title, "unit": unit, "lines": dict(sorted(lines.items()))})
    return out


def alerts(prometheus_url: str, *, t0: float, end: float, speed: float) -> list[Alert]:
    """Each alert that fired during the run (``dashboards/rules``), with the scenario times it
    first and last fired: when the on-call would have been paged, and for how long."""
    out = []
    for s in query_range(prometheus_url, 'ALERTS{alertstate="firing"}', t0, end, 1.0):
        times = [round((float(t) - t0) * speed, 1) for t, _v in s["values"]]
        labels = s["metric"]
        out.append(
            Alert(
                alert=labels.get("alertname", "?"),
                client=labels.get("client"),
                severity=labels.get("severity"),
                first_at=times[0],
                last_at=times[-1],
            )
        )
    return sorted(out, key=lambda a: (a.first_at, a.alert, a.client or ""))


def alert_name(alertname: str, client: str | None) -> str:
    """How an alert is named in reports and postmortems: ``JourneyErrorBudgetBurn (web)``."""
    return alertname + (f" ({client})" if client else "")


def alert_marks(fired: list[Alert]) -> list[Mark]:
    return [
        Mark(at=a.first_at, end=a.last_at, kind="alert", label=f"{alert_name(a.alert, a.client)} fires") for a in fired
    ]


def time_to_recover(series: dict[str, SeriesEntry], threshold: float = 0.95) -> Trouble | None:
    """When users' trouble started and ended, in scenario seconds, from ``journeys_not_failed``.

    Trouble starts at the first point (at or after time 0) where either client's share of
    journeys not failed falls below ``threshold`` and ends at the last such point; None if
    it never falls. ``seconds`` is the time between, or None while trouble lasts to the end.
    """
    entry = series.get("journeys_not_failed")
    lines = entry.lines if entry is not None else {}
    bad = sorted({t for pts in lines.values() for t, v in pts if t >= 0 and v is not None and v < threshold})
    if not bad:
        return None
    last_t = max((t for pts in lines.values() for t, v in pts if v is not None), default=bad[-1])
    ended = bad[-1] < last_t
    return Trouble(start=bad[0], end=bad[-1], seconds=round(bad[-1] - bad[0], 1) if ended else None)


def marks_from_journal(entries: list[JournalEntry], t0: float, speed: float) -> list[Mark]:
    """What happened when, on the scenario-time axis: waves, guard rollbacks, rollbacks, faults,
    kills, restarts and notes, from the run's journal."""

    def at(wall: float) -> float:
        return round((wall - t0) * speed, 2)

    out: list[Mark] = []
    for e in entries:
        if isinstance(e, RestartEntry):
            out.append(Mark(at=at(e.started), kind="restart", label=f"{e.target} restarted"))
        if not isinstance(e, StepEntry) or e.outcome == "failed" or e.unplayed:
            continue  # a workshop's step that changed nothing (its fix was the room's, or the game had ended) is no mark
        out += _step_marks(e, at)
    return out


def _step_marks(e: StepEntry, at: Callable[[float], float]) -> list[Mark]:
    name = e.name or e.action
    if e.action == "rollout":
        marks = []
        for i, w in enumerate(e.wave_times or [], 1):
            wave = (e.waves or [[]] * i)[i - 1]
            replicas = [n for n in wave if n.startswith("api")] or wave
            marks.append(Mark(at=at(w), kind="wave", label=f"wave {i}: {', '.join(replicas)}"))
        if e.rolled_back_at:
            # Rolled back by its guard, or stopped between waves (a halt, or a workshop's lever).
            label = "guard rolled back" if e.guard_breached else (e.note or "rolled back")
            marks.append(Mark(at=at(e.rolled_back_at), kind="guard", label=label))
        return marks
    if e.action == "inject":
        start = at(e.started)
        return [Mark(at=start, end=None if e.ttl_s is None else round(start + e.ttl_s, 2), kind="fault", label=name)]
    if e.action == "rollback":
        return [Mark(at=at(e.started), kind="rollback", label=name)]
    if e.action == "kill":
        return [Mark(at=at(e.started), kind="kill", label=name)]
    if e.action == "note":
        return [Mark(at=at(e.started), kind="note", label=e.note or name)]
    if e.action == "works_for_me":  # what the two probes saw, in the report's timeline
        return [Mark(at=at(e.started), kind="note", label=f"{name}: {e.note or ''}")]
    return []

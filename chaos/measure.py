"""Figures of a run, read back from Prometheus for any window of time.

Counters are read at the window's start and end (``last_over_time``, so a load generator that
has already stopped still counts) and subtracted. Works for any phase after the run.
"""

from __future__ import annotations

import math

from chaos.promql import query, scalar
from chaos.records import Client, ClientFigures, Window

CLIENTS: tuple[Client, ...] = ("web", "app")
OUTCOMES = ("ok", "degraded", "failed")
CATEGORIES = ("website", "app", "server_connection")


def phase_scalar(prometheus_url: str, promql: str, start: float, end: float) -> float | None:
    """A scenario's PromQL expectation for the phase [start, end] (Unix seconds): evaluated at the
    phase's end, with ``$phase`` standing for the phase's length (at least a second)."""
    return scalar(prometheus_url, promql.replace("$phase", f"{max(1000, round(1000 * (end - start)))}ms"), end)


def _counts(prometheus_url: str, metric: str, by: str, at: float) -> dict[tuple[str, ...], float]:
    out = {}
    for s in query(prometheus_url, f"sum by ({by}) (last_over_time({metric}[2m]))", at):
        out[tuple(s["metric"].get(k, "") for k in by.split(", "))] = float(s["value"][1])
    return out


def window(prometheus_url: str, start: float, end: float) -> Window:
    """Journeys by client and outcome, users hurt, problems by reason, reports by category, and
    health-check share in [start, end]."""
    j0 = _counts(prometheus_url, "failwhale_journeys_total", "client, outcome", start)
    j1 = _counts(prometheus_url, "failwhale_journeys_total", "client, outcome", end)
    r0 = _counts(prometheus_url, "failwhale_user_reports_total", "category", start)
    r1 = _counts(prometheus_url, "failwhale_user_reports_total", "category", end)
    h0 = _counts(prometheus_url, "failwhale_users_hurt_total", "client", start)
    h1 = _counts(prometheus_url, "failwhale_users_hurt_total", "client", end)
    p0 = _counts(prometheus_url, "failwhale_journey_problems_total", "client, reason", start)
    p1 = _counts(prometheus_url, "failwhale_journey_problems_total", "client, reason", end)
    clients = {}
    for c in CLIENTS:
        counts = {o: max(0.0, j1.get((c, o), 0.0) - j0.get((c, o), 0.0)) for o in OUTCOMES}
        total = sum(counts.values())
        clients[c] = ClientFigures(
            journeys=int(total),
            ok=int(counts["ok"]),
            degraded=int(counts["degraded"]),
            failed=int(counts["failed"]),
            failure_ratio=round(counts["failed"] / total, 4) if total else None,
            degraded_ratio=round(counts["degraded"] / total, 4) if total else None,
            ok_ratio=round(counts["ok"] / total, 4) if total else None,
            users_hurt=int(max(0.0, h1.get((c,), 0.0) - h0.get((c,), 0.0))),
        )
    reasons: dict[str, dict[str, int]] = {c: {} for c in CLIENTS}
    for (who, reason), n in sorted(p1.items()):
        diff = int(max(0.0, n - p0.get((who, reason), 0.0)))
        if who in reasons and diff:
            reasons[who][reason] = diff
    reports = {k: int(max(0.0, r1.get((k,), 0.0) - r0.get((k,), 0.0))) for k in CATEGORIES}
    seconds = max(1, round(end - start))
    # Every scrape of a service process is a health check; the status page reads only these.
    health = scalar(prometheus_url, f'avg(avg_over_time(up{{job!="loadgen"}}[{seconds}s]))', end)
    return Window.model_validate(
        {
            "clients": clients,
            "user_reports": reports,
            "reasons": reasons,
            "health_checks": None if health is None else round(health, 4),
        }
    )


def report_share_interval(figures: Window, name: str, z: float = 1.96) -> tuple[float, float, int] | None:
    """For a ``reports.<category>_share`` measure: the share's 95% Wilson interval and how many
    reports it rests on (None without reports). Shown beside the share so a reader sees how far
    chance alone moves it; it decides nothing: an expectation holds on the share itself."""
    category = name.partition(".")[2].removesuffix("_share")
    n = sum(figures.user_reports.values())
    if not n:
        return None
    p = figures.user_reports.get(category, 0) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half), n


def measure(figures: Window, name: str, lost_tweets: int | None) -> float | None:
    """One named measure (see chaos.scenario.MEASURES) from a window's figures; None when it
    could not be measured (lost_tweets=None: this machine cannot see the tweets' files)."""
    if name == "lost_tweets":
        return None if lost_tweets is None else float(lost_tweets)
    if name == "health_checks":
        return figures.health_checks
    if name == "users_hurt":
        return float(sum(figures.clients[c].users_hurt for c in CLIENTS))
    group, _, what = name.partition(".")
    for client in CLIENTS:
        if group == client:
            value = getattr(figures.clients[client], what)
            return None if value is None else float(value)
    total = sum(figures.user_reports.values())
    category = what.removesuffix("_share")
    return figures.user_reports[category] / total if total else None

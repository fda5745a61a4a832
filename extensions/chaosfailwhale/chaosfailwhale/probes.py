"""Probes of a failwhale lab: how its users are doing, what they report, and what the lab says.

Plain annotations, for ``chaos discover``. The journey and report probes read the lab's
Prometheus over a trailing window, so a steady-state hypothesis reads the same figures the
lab's dashboards show (docs/metrics.md).
"""

import urllib.error
import urllib.request

import orjson
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaos import promql
from chaos.errors import ChaosError
from chaosfailwhale.lab import run, target

__all__ = ["alerts_firing", "architecture_versions", "journeys_served", "status_page", "user_reports"]

CLIENTS = ("web", "app")


def _window(window_s: float) -> str:
    if not isinstance(window_s, (int, float)) or not 1 <= window_s <= 3600:
        raise ActivityFailed(f"window_s must be between 1 and 3600 seconds, not {window_s!r}")
    return f"{round(window_s)}s"  # PromQL durations are whole seconds here


def journeys_served(
    client: str = "web", window_s: float = 15.0, configuration: Configuration = None, secrets: Secrets = None
) -> float:
    """The share of ``client``'s journeys (``web`` or ``app``) not failed over the last
    ``window_s`` seconds: 1.0 when every user got what they came for, degraded ones included."""
    if client not in CLIENTS:
        raise ActivityFailed(f"client must be one of {', '.join(CLIENTS)}, not {client!r}")
    t = target(configuration, secrets)
    w = _window(window_s)
    query = (
        f'sum(rate(failwhale_journeys_total{{client="{client}",outcome!="failed"}}[{w}]))'
        f' / sum(rate(failwhale_journeys_total{{client="{client}"}}[{w}]))'
    )
    try:
        value = promql.scalar(t.lab.url("prometheus"), query)
    except ChaosError as e:
        raise ActivityFailed(str(e)) from e
    if value is None:
        raise ActivityFailed(f"no {client} journeys in the last {w}: is the load running?")
    return round(value, 4)


def user_reports(window_s: float = 60.0, configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """User reports over the last ``window_s`` seconds by category (website, app, login, ...)."""
    t = target(configuration, secrets)
    query = f"sum by (category) (increase(failwhale_user_reports_total[{_window(window_s)}]))"
    try:
        result = promql.query(t.lab.url("prometheus"), query)
    except ChaosError as e:
        raise ActivityFailed(str(e)) from e
    return {s["metric"].get("category", "?"): round(float(s["value"][1])) for s in result}


def status_page(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """What the lab's public status page says now (it reads health checks only)."""
    t = target(configuration, secrets)
    try:
        with urllib.request.urlopen(t.lab.url("web") + "/status.json", timeout=5) as resp:
            return dict(orjson.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ActivityFailed(f"the status page at {t.lab.url('web')}/status.json did not answer: {e}") from e


def architecture_versions(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """The architecture version each process runs (``?`` for one that did not answer)."""
    t = target(configuration, secrets)
    answers = run(t.control.each("GET", "/control/architecture", timeout_s=2.0))
    return {a.instance: (a.body.get("version", "?") if a.ok and isinstance(a.body, dict) else "?") for a in answers}


def alerts_firing(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """The names of the lab's alerts firing now (the SLO alerts of dashboards/rules)."""
    t = target(configuration, secrets)
    try:
        result = promql.query(t.lab.url("prometheus"), 'ALERTS{alertstate="firing"}')
    except ChaosError as e:
        raise ActivityFailed(str(e)) from e
    return sorted({s["metric"]["alertname"] for s in result})

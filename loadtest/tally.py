"""Journey and user-report counts as plain numbers, merged across Locust processes.

Every Locust process records into a :class:`Tally`. A worker ships what it counted since its
last report to the master with Locust's own stats reports (``report_to_master``), and the
master merges it (``worker_report``); the master, or a single local process, exposes the
total on ``/metrics`` through :class:`TallyCollector`. One scrape target therefore holds the
sum over all workers, and nothing is counted twice or lost when a worker stops (Locust sends
a final report).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

CLIENTS = ("web", "app")
JOURNEYS = ("home", "refresh", "login", "post_tweet", "notifications")
OUTCOMES = ("ok", "degraded", "failed")
# Why a journey was not ok: a small fixed set, from what the client saw.
REASONS = (
    "rate_limited",
    "server_error",
    "timeout",
    "connection_error",
    "unauthorized",
    "client_error",
    "bad_response",
)
REPORT_CATEGORIES = ("website", "app", "server_connection")
# Seconds: a cache hit on the app to a person who reloaded a broken page twice.
JOURNEY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)
_LE = [floatToGoString(b) for b in JOURNEY_BUCKETS] + ["+Inf"]


class Tally:
    """Counts since creation (master/local) or since the last report (worker)."""

    def __init__(self) -> None:
        self._start_over()

    def _start_over(self) -> None:
        self.journeys: dict[tuple[str, str, str], int] = {}
        self.reasons: dict[tuple[str, str, str], int] = {}
        self.latency: dict[tuple[str, str], list[Any]] = {}  # (sum, bucket counts)
        self.reports: dict[str, int] = {}
        self.hurt: dict[str, int] = {}  # users counted once, at their first failed journey

    def journey(self, client: str, journey: str, outcome: str, reason: str | None, seconds: float) -> None:
        key = (client, journey, outcome)
        self.journeys[key] = self.journeys.get(key, 0) + 1
        if reason is not None and outcome != "ok":
            rkey = (client, journey, reason)
            self.reasons[rkey] = self.reasons.get(rkey, 0) + 1
        lat = self.latency.get((client, journey))
        if lat is None:
            lat = self.latency[(client, journey)] = [0.0, [0] * (len(JOURNEY_BUCKETS) + 1)]
        lat[0] += seconds
        lat[1][bisect_left(JOURNEY_BUCKETS, seconds)] += 1

    def report(self, category: str) -> None:
        self.reports[category] = self.reports.get(category, 0) + 1

    def user_hurt(self, client: str) -> None:
        self.hurt[client] = self.hurt.get(client, 0) + 1

    def drain(self) -> dict[str, Any]:
        """Everything counted so far, as JSON-friendly data, and start again from zero."""
        data = {
            "journeys": [[*k, v] for k, v in self.journeys.items()],
            "reasons": [[*k, v] for k, v in self.reasons.items()],
            "latency": [[*k, s, b] for k, (s, b) in self.latency.items()],
            "reports": dict(self.reports),
            "hurt": dict(self.hurt),
        }
        self._start_over()
        return data

    def merge(self, data: dict[str, Any]) -> None:
        for client, journey, outcome, n in data.get("journeys", []):
            key = (client, journey, outcome)
            self.journeys[key] = self.journeys.get(key, 0) + n
        for client, journey, reason, n in data.get("reasons", []):
            key = (client, journey, reason)
            self.reasons[key] = self.reasons.get(key, 0) + n
        for client, journey, total, buckets in data.get("latency", []):
            lat = self.latency.get((client, journey))
            if lat is None:
                lat = self.latency[(client, journey)] = [0.0, [0] * (len(JOURNEY_BUCKETS) + 1)]
            lat[0] += total
            lat[1] = [a + b for a, b in zip(lat[1], buckets, strict=True)]
        for category, n in data.get("reports", {}).items():
            self.reports[category] = self.reports.get(category, 0) + n
        for client, n in data.get("hurt", {}).items():
            self.hurt[client] = self.hurt.get(client, 0) + n

    def totals(self) -> dict[str, dict[str, int]]:
        """Journeys by client and outcome (for summaries and tests)."""
        out: dict[str, dict[str, int]] = {c: dict.fromkeys(OUTCOMES, 0) for c in CLIENTS}
        for (client, _journey, outcome), n in self.journeys.items():
            out.setdefault(client, dict.fromkeys(OUTCOMES, 0))[outcome] += n
        return out


class TallyCollector:
    """Exposes a Tally (and the live user counts) as Prometheus metrics at scrape time."""

    def __init__(self, tally: Tally, users: Callable[[], dict[str, int]] = dict) -> None:
        self.tally = tally
        self.users = users

    def describe(self) -> Iterator[Metric]:
        return iter(())  # built fresh each scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        t = self.tally
        journeys = CounterMetricFamily(
            "failwhale_journeys",
            "User journeys finished, by client, journey and outcome (ok, degraded, failed).",
            labels=["client", "journey", "outcome"],
        )
        for (client, journey, outcome), n in t.journeys.items():
            journeys.add_metric([client, journey, outcome], n)
        reasons = CounterMetricFamily(
            "failwhale_journey_problems",
            "Journeys that were not ok, by the reason the client saw.",
            labels=["client", "journey", "reason"],
        )
        for key, n in t.reasons.items():
            reasons.add_metric(list(key), n)
        latency = HistogramMetricFamily(
            "failwhale_journey_duration_seconds",
            "Time a journey took from the user's first tap to its end, retries included.",
            labels=["client", "journey"],
        )
        for (client, journey), (total, buckets) in t.latency.items():
            latency.add_metric([client, journey], list(zip(_LE, accumulate(buckets), strict=True)), total)
        reports = CounterMetricFamily(
            "failwhale_user_reports",
            "Problem reports filed by simulated users, Downdetector-style, by category.",
            labels=["category"],
        )
        for category in REPORT_CATEGORIES:
            reports.add_metric([category], t.reports.get(category, 0))
        hurt = CounterMetricFamily(
            "failwhale_users_hurt",
            "Simulated users who have had at least one failed journey, by client; each user counts once.",
            labels=["client"],
        )
        for client in CLIENTS:
            hurt.add_metric([client], t.hurt.get(client, 0))
        users = GaugeMetricFamily(
            "failwhale_loadgen_users", "Simulated users running now, by client.", labels=["client"]
        )
        for client, n in self.users().items():
            users.add_metric([client], n)
        yield from (journeys, reasons, latency, reports, hurt, users)

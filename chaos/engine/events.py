"""The run as Prometheus sees it (job ``chaos``): steps by action and outcome, the phase now, the
scenario's clock. The dashboards mark steps and phases from these (see docs/metrics.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Step counters start at zero for every action and outcome (see Events).
STEP_ACTIONS = ("inject", "rollout", "rollback", "kill", "pause", "note", "works_for_me")
STEP_OUTCOMES = ("ok", "rolled_back", "failed", "skipped")


class _ScenarioClock(Collector):
    """``failwhale_chaos_scenario_seconds``: present only while a timeline plays, so dashboards
    can tell scenario time from wall time and show nothing outside a run."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.events.scenario_now()
        if now is not None:
            yield GaugeMetricFamily(
                "failwhale_chaos_scenario_seconds", "The scenario's clock: seconds since its t = 0.", value=now
            )


class Events:
    """The run as Prometheus sees it (job ``chaos``): steps by outcome, the phase now, faults sent."""

    def __init__(self, port: int | None, host: str) -> None:
        self.registry = r = CollectorRegistry()
        self.steps = Counter(
            "failwhale_chaos_steps_total",
            "Scenario steps run, by action and outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self.phase = Gauge("failwhale_chaos_phase", "1 while the scenario is in this phase.", ["phase"], registry=r)
        self.running = Gauge("failwhale_chaos_run_active", "1 while a scenario run plays its timeline.", registry=r)
        # Every action and outcome from zero, so a step's first occurrence is an increase that
        # dashboards can mark (a series born at 1 has no increase to see).
        for action in STEP_ACTIONS:
            for outcome in STEP_OUTCOMES:
                self.steps.labels(action, outcome)
        self._t0: float | None = None
        self._speed = 1.0
        r.register(_ScenarioClock(self))
        self.server = start_http_server(port, addr=host, registry=r)[0] if port else None

    def scenario_now(self) -> float | None:
        return None if self._t0 is None else (time.time() - self._t0) * self._speed

    def start_clock(self, t0: float, speed: float) -> None:
        self._t0, self._speed = t0, speed
        self.running.set(1)

    def stop_clock(self) -> None:
        self._t0 = None
        self.running.set(0)

    def close(self) -> None:
        """Free the port: `failwhale scenarios` plays many runs in one process."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

"""When a simulated user files a problem report, and in which category.

The model only looks at what the user lived through, never at which cohort they belong to:

* every journey changes the user's *frustration*: a failed journey adds 1, a degraded one
  (stale content, or a page that worked only after a reload) adds 0.05, and an ok journey
  halves it, since things working again calms people down;
* after a journey that was not ok, the user reports with probability
  ``1 - exp(-sensitivity * frustration**2)``: one failure rarely makes anyone report, a run of
  them usually does;
* a user files at most one report per run (as on Downdetector, people report once);
* the category is what they saw: ``server_connection`` when their device could not reach the
  service at all (connection refused, or no answer before the client gave up), else the
  surface where the error appeared: ``website`` for the desktop site, ``app`` for the app.

So a cohort that sees more errors, or sees them in a row, files more reports; a cohort whose
cache hides errors behind stale content files few.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

FAILED_WEIGHT = 1.0
DEGRADED_WEIGHT = 0.05
CALM_DOWN = 0.5
CONNECTION_REASONS = frozenset({"connection_error", "timeout"})


@dataclass
class Reporter:
    surface: str  # "website" or "app": where this user sees errors
    rng: random.Random
    sensitivity: float = 0.35
    frustration: float = 0.0
    reported: bool = False
    hurt: bool = False  # has had a failed journey this run

    def after(self, outcome: str, reason: str | None) -> str | None:
        """Update frustration after a journey; return a report category if the user files one."""
        if outcome == "ok":
            self.frustration *= CALM_DOWN
            return None
        self.frustration += FAILED_WEIGHT if outcome == "failed" else DEGRADED_WEIGHT
        if self.reported:
            return None
        if self.rng.random() >= 1 - math.exp(-self.sensitivity * self.frustration**2):
            return None
        self.reported = True
        return "server_connection" if reason in CONNECTION_REASONS else self.surface

"""What both cohorts share: a seeded random source, a reporter, and how a journey is finished."""

from __future__ import annotations

import random

from locust import FastHttpUser

from loadtest.journey import Journey
from loadtest.recorder import finish
from loadtest.reports import Reporter


class Cohort(FastHttpUser):
    abstract = True
    client_class = ""  # "web" or "app": the label this cohort's journeys carry
    surface = ""  # where its users see errors: the report category "website" or "app"

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.opts = opts
        self.rng = random.Random(f"{getattr(opts, 'seed', 0)}-{self.client_class}-{id(self)}")
        self.reporter = Reporter(self.surface, self.rng)

    def wait_time(self) -> float:
        """Seconds between journeys (``--think MIN MAX``): how often a person uses the service."""
        low, high = getattr(getattr(self, "opts", None), "think", None) or (1.0, 4.0)
        return self.rng.uniform(low, high)

    def journey(self, name: str) -> Journey:
        return Journey(self.client_class, name)

    def finish(self, journey: Journey) -> None:
        finish(self.environment, journey, self.reporter)

"""Locust's load shape for the lab: the curve in :mod:`loadtest.curve`, ticked once a second."""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.curve import users_at


class LabShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        # Locust sets both before it ticks a shape.
        assert self.runner is not None and self.runner.environment.parsed_options is not None
        opts = self.runner.environment.parsed_options
        users = users_at(self.get_run_time(), opts.duration, opts.peak_users, opts.shape, opts.evening or None)
        if users is None:
            return None
        return users, opts.spawn_per_s

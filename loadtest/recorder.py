"""Where journeys go: the process's Tally, Locust's own statistics, and the user's reporter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadtest.journey import Journey
from loadtest.reports import Reporter
from loadtest.tally import Tally

if TYPE_CHECKING:  # importing locust monkey-patches the process (gevent); callers have done it already
    from locust.env import Environment

# One per Locust process; the locustfile wires it to Prometheus (master/local) or to the master.
TALLY = Tally()


class JourneyFailed(Exception):
    """Shown in Locust's failure table for journeys that ended ``failed``."""


def finish(env: Environment, journey: Journey, reporter: Reporter) -> None:
    """Record a finished journey everywhere, and let the user decide whether to report it."""
    seconds = journey.seconds
    TALLY.journey(journey.client, journey.name, journey.outcome, journey.reason, seconds)
    # Also a row in Locust's own table, so its UI shows journeys beside raw requests.
    env.events.request.fire(
        request_type="JOURNEY",
        name=f"{journey.client} {journey.name} ({journey.outcome})",
        response_time=seconds * 1000,
        response_length=0,
        exception=JourneyFailed(journey.reason) if journey.outcome == "failed" else None,
        context={},
    )
    if journey.outcome == "failed" and not reporter.hurt:
        reporter.hurt = True
        TALLY.user_hurt(journey.client)
    category = reporter.after(journey.outcome, journey.reason)
    if category is not None:
        TALLY.report(category)

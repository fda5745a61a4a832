"""The load over time as plain numbers (no Locust import, so anything can use and test it).

``evening`` follows how many people are on the service from 18:00 to midnight (rising into
the evening peak around 21:00, then falling), squeezed into ``duration`` seconds (or into a
shorter ``span``, after which the load stays at the evening's last level). ``constant`` keeps the
peak for the whole duration. Either way the load ends when the duration is over.
"""

from __future__ import annotations

from itertools import pairwise

# (hour of the evening, share of the peak audience online)
EVENING = [(18.0, 0.55), (19.0, 0.8), (20.0, 0.95), (21.0, 1.0), (22.0, 0.85), (23.0, 0.65), (24.0, 0.45)]


def evening_share(hour: float) -> float:
    """Share of the peak audience online at ``hour`` (18..24), linear between the points."""
    if hour <= EVENING[0][0]:
        return EVENING[0][1]
    for (h0, s0), (h1, s1) in pairwise(EVENING):
        if hour <= h1:
            return s0 + (s1 - s0) * (hour - h0) / (h1 - h0)
    return EVENING[-1][1]


def users_at(t: float, duration: float, peak: int, shape: str, span: float | None = None) -> int | None:
    """How many users should run ``t`` seconds in; None once the duration is over."""
    if t >= duration:
        return None
    if shape == "constant":
        return peak
    span = min(span or duration, duration)
    return max(1, round(peak * evening_share(18.0 + 6.0 * min(t, span) / span)))

"""How long the app waits before trying again: exponential backoff, full jitter, Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.25
    cap_s: float = 4.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based).

        Full jitter spreads retries of many clients over the whole window, so a short blip
        does not turn into synchronised waves; a server's Retry-After is a floor.
        """
        ceiling = min(self.cap_s, self.base_s * (2**attempt))
        wait = rng.uniform(0, ceiling) if self.jitter else ceiling
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (only the delta-seconds form is used in the lab)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None

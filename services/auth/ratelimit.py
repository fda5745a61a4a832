"""Token buckets, resized in place when the architecture changes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: int
    tokens: float = field(default=-1.0)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def _refill(self, now: float) -> None:
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate_per_s)
        self.stamp = now

    def take(self, now: float | None = None) -> float | None:
        """Take one token; None when granted, else the seconds until one will be available."""
        now = time.monotonic() if now is None else now
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate_per_s

    def resize(self, rate_per_s: float, burst: int, now: float | None = None) -> None:
        """Apply new limits, keeping the tokens already earned (capped at the new burst)."""
        self._refill(time.monotonic() if now is None else now)
        self.rate_per_s, self.burst = rate_per_s, burst
        self.tokens = min(self.tokens, float(burst))

"""One user journey: its outcome, its reason, its timing, and where it is recorded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Recorded through ``Recorder.journey``: set up by the locustfile for this process.


def reason_for(status: int, error: Any = None) -> str | None:
    """Why a response was not a success, from what the client saw (None if it was fine)."""
    if status == 0:
        text = f"{type(error).__name__} {error}".lower() if error is not None else ""
        return "timeout" if "timeout" in text or "timed out" in text else "connection_error"
    if 200 <= status < 300:
        return None
    if status == 429:
        return "rate_limited"
    if status == 401:
        return "unauthorized"
    if status >= 500:
        return "server_error"
    return "client_error"


@dataclass
class Journey:
    client: str
    name: str
    started: float = field(default_factory=time.perf_counter)
    outcome: str = "ok"
    reason: str | None = None

    def degrade(self, reason: str | None) -> None:
        if self.outcome == "ok":
            self.outcome, self.reason = "degraded", reason

    def fail(self, reason: str | None) -> None:
        self.outcome, self.reason = "failed", reason

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

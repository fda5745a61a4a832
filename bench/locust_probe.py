"""The probe bench/lab_throughput.py loads into Locust: every request's latency by the second it
ended, written out when Locust quits.

Standard library and Locust only: Locust sets its --run-time timer on gevent's clock, which stands
still while the locustfile is imported, so every second spent importing here comes off the end of
the ceiling run (a locustfile that takes 3 s to import ends a ``--run-time 5s`` run after 1.7 s;
importing the services and aiohttp took 0.5 s on an idle machine and over 2 s on a busy one).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path


def latency_bucket(ms: float) -> float:
    """Latency rounded to a bucket: 0.1 ms below 10 ms, 1 ms below 100, then 2 significant digits."""
    if ms < 10:
        return round(ms, 1)
    if ms < 100:
        return float(round(ms))
    return float(round(ms, -int(math.floor(math.log10(ms))) + 1))


def install_probe() -> None:
    """Count every request by the second it ended, with its latency; write them out at exit."""
    from locust import events

    seconds: dict[int, dict] = {}
    marks: dict[str, float] = {}

    def second(now: float) -> dict:
        s = int(now)
        if s not in seconds:
            seconds[s] = {"n": 0, "failed": 0, "ms": Counter(), "journeys": Counter()}
        return seconds[s]

    @events.init_command_line_parser.add_listener
    def _options(parser) -> None:
        parser.add_argument(
            "--bench-out", default="", help="(bench/lab_throughput.py) where to write what the probe saw"
        )

    @events.request.add_listener
    def _request(request_type, name, response_time, exception=None, **_kw) -> None:
        rec = second(time.time())
        if request_type == "JOURNEY":  # the lab's journeys: "web home (ok)" -> "web ok"
            client, _, rest = name.partition(" ")
            rec["journeys"][f"{client} {rest.rsplit('(', 1)[-1].rstrip(')')}"] += 1
            return
        rec["n"] += 1
        if exception is not None:
            rec["failed"] += 1
        rec["ms"][latency_bucket(response_time or 0.0)] += 1

    @events.test_start.add_listener
    def _start(**_kw) -> None:
        marks.setdefault("start", time.time())

    @events.spawning_complete.add_listener
    def _spawned(user_count, **_kw) -> None:
        marks.setdefault("spawned", time.time())
        marks.setdefault("users", user_count)

    @events.test_stopping.add_listener
    def _stopping(**_kw) -> None:
        marks.setdefault("stopping", time.time())

    @events.quitting.add_listener
    def _quitting(environment, **_kw) -> None:
        out = getattr(environment.parsed_options, "bench_out", "")
        if out:
            data = {"marks": marks, "seconds": {str(s): v for s, v in seconds.items()}}
            Path(out).write_text(json.dumps(data), encoding="utf-8")

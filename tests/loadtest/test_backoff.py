"""App retries back off exponentially with full jitter, and respect Retry-After."""

from __future__ import annotations

import random

from loadtest.backoff import Backoff, parse_retry_after


def test_delays_grow_then_cap_and_jitter_spreads_them():
    b = Backoff(base_s=0.25, cap_s=4.0)
    rng = random.Random(1)
    for attempt, ceiling in [(0, 0.25), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [b.delay(attempt, rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 2  # spread over the window, not synchronised


def test_without_jitter_every_client_waits_the_same():
    b = Backoff(base_s=0.25, cap_s=4.0, jitter=False)
    assert {b.delay(2, random.Random(i)) for i in range(50)} == {1.0}


def test_retry_after_is_a_floor():
    b = Backoff(base_s=0.25, cap_s=4.0)
    assert all(b.delay(0, random.Random(i), retry_after=3.0) >= 3.0 for i in range(50))


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-1") is None

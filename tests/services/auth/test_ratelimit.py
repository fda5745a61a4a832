"""Token buckets with explicit clock values: burst, refill, cap, and in-place resizing."""

from __future__ import annotations

import pytest

from services.auth.ratelimit import TokenBucket


def bucket(rate: float, burst: int) -> TokenBucket:
    return TokenBucket(rate, burst, stamp=0.0)


def take_all(b: TokenBucket, now: float) -> int:
    """How many takes are granted at ``now`` before the first refusal."""
    n = 0
    while b.take(now) is None:
        n += 1
        assert n < 10_000
    return n


def test_starts_full_and_grants_a_burst():
    b = bucket(rate=2.0, burst=3)
    assert [b.take(0.0) for _ in range(3)] == [None, None, None]
    assert b.take(0.0) == pytest.approx(0.5)  # one token at 2/s takes half a second


def test_refills_at_the_rate():
    b = bucket(rate=2.0, burst=3)
    take_all(b, 0.0)
    assert b.take(0.25) == pytest.approx(0.25)  # half a token earned, half still to wait for
    assert b.take(0.5) is None  # the second half arrived
    assert b.take(0.5) is not None
    assert take_all(b, 1.5) == 2


def test_refill_is_capped_at_the_burst():
    b = bucket(rate=10.0, burst=4)
    take_all(b, 0.0)
    assert take_all(b, 1000.0) == 4


def test_wait_is_time_to_next_whole_token():
    b = bucket(rate=0.5, burst=1)
    assert b.take(0.0) is None
    assert b.take(0.0) == pytest.approx(2.0)
    assert b.take(1.5) == pytest.approx(0.5)
    assert b.take(2.0) is None


def test_refused_takes_cost_nothing():
    b = bucket(rate=1.0, burst=1)
    b.take(0.0)
    for t in (0.1, 0.2, 0.3, 0.9):
        assert b.take(t) is not None
    assert b.take(1.0) is None


def test_resize_keeps_earned_tokens():
    b = bucket(rate=1.0, burst=10)
    for _ in range(7):
        b.take(0.0)
    b.resize(100.0, 20, now=1.0)  # 3 left + 1 earned at the old rate before the change
    assert b.tokens == pytest.approx(4.0)
    assert take_all(b, 1.0) == 4
    assert b.take(1.02) is None  # then it refills at the new rate


def test_resize_caps_tokens_at_the_new_burst():
    b = bucket(rate=1.0, burst=10)
    b.resize(1.0, 2, now=0.0)
    assert take_all(b, 0.0) == 2
    assert take_all(b, 500.0) == 2


def test_resize_does_not_hand_out_the_new_burst_for_free():
    b = bucket(rate=1.0, burst=1)
    b.take(0.0)
    b.resize(1.0, 100, now=0.0)
    assert b.take(0.0) is not None
    assert take_all(b, 1000.0) == 100

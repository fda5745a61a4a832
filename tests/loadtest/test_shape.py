"""The evening curve rises to a peak around 21:00, falls, and the load always ends."""

from __future__ import annotations

from itertools import pairwise

from loadtest.curve import evening_share, users_at


def test_evening_peaks_around_nine_and_is_continuous():
    hours = [18 + i / 10 for i in range(61)]
    shares = [evening_share(h) for h in hours]
    assert max(shares) == 1.0 and evening_share(21.0) == 1.0
    assert evening_share(18.0) < evening_share(20.0) < evening_share(21.0) > evening_share(23.0)
    assert all(abs(a - b) < 0.05 for a, b in pairwise(shares))


def test_users_follow_the_curve_and_stop_at_the_end():
    assert users_at(0, 360, 100, "evening") == 55
    assert users_at(180, 360, 100, "evening") == 100  # half way: 21:00
    assert users_at(359.9, 360, 100, "evening") == 45
    assert users_at(360, 360, 100, "evening") is None


def test_constant_shape_is_flat_and_bounded():
    assert {users_at(t, 30, 12, "constant") for t in (0, 10, 29.9)} == {12}
    assert users_at(30, 30, 12, "constant") is None


def test_a_shorter_evening_then_holds_its_last_level_until_the_load_ends():
    # The evening spans 360 s of a 1000 s load (a workshop that goes on after its scenario).
    assert users_at(180, 1000, 100, "evening", span=360) == users_at(180, 360, 100, "evening") == 100
    assert users_at(359.9, 1000, 100, "evening", span=360) == 45
    assert users_at(800, 1000, 100, "evening", span=360) == 45
    assert users_at(1000, 1000, 100, "evening", span=360) is None

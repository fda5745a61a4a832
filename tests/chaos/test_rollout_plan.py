"""Wave plans: the rest of the lab moves with the first replicas, then replicas by share."""

from __future__ import annotations

import pytest

from chaos.errors import BadInput
from chaos.rollout import plan_waves

OTHERS = ["web", "edge", "auth", "timeline", "tweets", "notifications"]


def test_quarter_half_all(arch):
    assert plan_waves(arch, [0.25, 0.5, 1.0]) == [[*OTHERS, "api-1"], ["api-2"], ["api-3", "api-4"]]


def test_a_last_wave_is_added_so_every_replica_moves(arch):
    assert plan_waves(arch, [0.5]) == [[*OTHERS, "api-1", "api-2"], ["api-3", "api-4"]]


def test_big_bang_is_one_wave(arch):
    assert plan_waves(arch, [1.0]) == [[*OTHERS, "api-1", "api-2", "api-3", "api-4"]]


def test_tiny_first_wave_still_moves_one_replica(arch):
    assert plan_waves(arch, [0.01, 1.0])[0] == [*OTHERS, "api-1"]


@pytest.mark.parametrize("bad", [[], [0], [0.5, 0.25], [1.5], [-0.1, 1]])
def test_bad_fractions_are_refused(arch, bad):
    with pytest.raises(BadInput, match="wave fractions"):
        plan_waves(arch, bad)


def test_named_waves_with_the_rest_last(arch):
    assert plan_waves(arch, [["api-3"], ["api-1", "api-2"]]) == [[*OTHERS, "api-3"], ["api-1", "api-2"], ["api-4"]]


@pytest.mark.parametrize(
    ("waves", "words"),
    [
        ([["api-9"]], "not an API replica"),
        ([["api-1"], ["api-1"]], "in two waves"),
        ([["web"]], "not an API replica"),
        ([0.5, ["api-1"]], "not a mix"),
    ],
)
def test_bad_named_waves_are_refused(arch, waves, words):
    with pytest.raises(BadInput, match=words):
        plan_waves(arch, waves)


def test_cli_reads_both_forms_of_waves():
    from chaos.cli.changes import parse_waves

    assert parse_waves("0.25,0.5,1") == [0.25, 0.5, 1.0]
    assert parse_waves("api-1;api-2,api-3") == [["api-1"], ["api-2", "api-3"]]

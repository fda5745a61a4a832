"""The shipped scenario catalog: every file is valid, and none singles out a client class."""

from __future__ import annotations

import pytest

from chaos.scenario import CATALOG, Inject, load_scenario

CATALOG = sorted((CATALOG).glob("*.yaml"))
CLIENT_HEADERS = {"x-client", "user-agent"}


def test_the_catalog_has_the_headline_scenario():
    assert "twitter-2022-12-28" in [p.stem for p in CATALOG]


@pytest.mark.parametrize("path", CATALOG, ids=[p.stem for p in CATALOG])
def test_shipped_scenario_is_valid_and_never_targets_a_client_class(path):
    scenario = load_scenario(path)
    assert scenario.incident.facts and scenario.teaches
    for step in scenario.timeline:
        if isinstance(step, Inject):
            for fault in step.faults:
                assert not CLIENT_HEADERS & {h.lower() for h in fault.header}, (
                    f"{path.name}: a fault picks traffic by {fault.header}; the split must come from client behaviour"
                )


def test_the_catalog_has_a_canary_and_three_classic_failures_beside_the_two_replays():
    names = {p.stem for p in CATALOG}
    assert {"twitter-2022-12-28", "twitter-2022-11-web-only", "canary-counterfactual"} <= names
    assert len(names) >= 6


def test_the_canary_replays_the_headline_change_on_the_same_evening():
    from chaos.scenario import Rollout

    scenarios = {p.stem: load_scenario(p) for p in CATALOG}
    canary, headline = scenarios["canary-counterfactual"], scenarios["twitter-2022-12-28"]
    assert canary.compare is not None and canary.compare.against == "twitter-2022-12-28"
    # Users hurt compare fairly only under the same load, length and time compression.
    assert (canary.load, canary.duration, canary.speed) == (headline.load, headline.duration, headline.speed)
    (c_roll,) = [s for s in canary.timeline if isinstance(s, Rollout)]
    (h_roll,) = [s for s in headline.timeline if isinstance(s, Rollout)]
    assert c_roll.architecture == h_roll.architecture and c_roll.guard and not h_roll.guard


def test_catalog_order_runs_a_comparison_after_what_it_compares_with():
    from chaos.cli.scenarios import catalog_order

    order = [p.stem for p in catalog_order(CATALOG)]
    assert order.index("canary-counterfactual") > order.index("twitter-2022-12-28")
    assert order[-1] == "canary-counterfactual"

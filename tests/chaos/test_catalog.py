"""The shipped scenario catalog: every file is valid, and none singles out a client class."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.scenario import Inject, load_scenario

CATALOG = sorted((Path(__file__).parents[2] / "chaos" / "scenarios").glob("*.yaml"))
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

"""The Grafana dashboards: generated from the panel spec, importable, and never out of date."""

from __future__ import annotations

import json

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.grafana import OUT, build, main
from dashboards.spec import default_spec

SPEC = default_spec()
BOARDS = [b.id for b in SPEC.dashboards]


def shipped(board_id: str) -> dict:
    return json.loads((OUT / f"failwhale-{board_id}.json").read_text())


@pytest.mark.parametrize("board_id", BOARDS)
def test_the_shipped_json_is_what_the_spec_builds(board_id):
    assert shipped(board_id) == build(SPEC, SPEC.board(board_id)), (
        f"dashboards/grafana/failwhale-{board_id}.json is stale: run `.venv/bin/python -m dashboards.grafana`"
    )


@pytest.mark.parametrize("board_id", BOARDS)
def test_grafanas_sdk_loads_each_dashboard_back(board_id):
    data = shipped(board_id)
    loaded = Dashboard.from_json(data)
    again = json.loads(json.dumps(loaded, cls=JSONEncoder))
    assert again["uid"] == f"failwhale-{board_id}" and again["title"] == data["title"]
    assert [p["type"] for p in again["panels"]] == [p["type"] for p in data["panels"]]
    assert [[t["expr"] for t in p["targets"]] for p in again["panels"]] == [
        [t["expr"] for t in p["targets"]] for p in data["panels"]
    ]
    for p in data["panels"]:
        pos = p["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (p["title"], pos)


@pytest.mark.parametrize("board_id", BOARDS)
def test_each_dashboard_shows_its_panels_with_the_spec_queries_and_marks(board_id):
    data = shipped(board_id)
    panels = SPEC.panels_of(board_id)
    assert [p["title"] for p in data["panels"]] == [p.title for p in panels]
    for got, want in zip(data["panels"], panels, strict=True):
        assert [t["expr"] for t in got["targets"]] == [q.expr for q in want.queries]
        assert got["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        # Tables and stats read the latest value; time series a range.
        assert all(t["instant"] is (want.kind != "timeseries") for t in got["targets"])
    marks = data["annotations"]["list"]
    assert [m["expr"] for m in marks] == [a.expr for a in SPEC.annotations]
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in data["templating"]["list"])


def test_the_command_writes_every_dashboard(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"failwhale-{b}.json" for b in BOARDS)
    assert capsys.readouterr().out.count("\n") == len(BOARDS)

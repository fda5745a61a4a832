"""The panel spec: what the dashboards promise to show, read only from documented metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from chaos.lab.provision import find_promtool
from dashboards.errors import DashboardError
from dashboards.spec import PANELS_FILE, RULES_FILE, default_spec, load_spec, metric_names
from tests.docs.test_metrics_doc import DOC

# Series Prometheus makes itself: scrape health and the alerts' own series.
PROMETHEUS_OWN = {"up", "ALERTS"}


def recorded() -> set[str]:
    rules = yaml.safe_load(RULES_FILE.read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def documented_names() -> set[str]:
    text = DOC.read_text()
    names = set(re.findall(r"`([a-z_:0-9]+)`", text))
    return names | {n + suffix for n in names for suffix in ("_bucket", "_sum", "_count")}


def test_the_overview_shows_what_a_watcher_needs():
    overview = {p.id for p in default_spec().panels_of("overview")}
    # The list: web vs app success, reports, API errors and latency, the rollout,
    # faults, alerts, and the health-check-only status tile.
    assert {
        "journey_success",
        "user_reports",
        "api_error_ratio",
        "api_latency",
        "api_versions",
        "active_faults",
        "firing_alerts",
        "status_page",
    } <= overview


def test_every_board_has_panels_and_every_tier_has_a_board():
    spec = default_spec()
    assert [b.id for b in spec.dashboards] == ["overview", "web", "api", "backends"]
    for board in spec.dashboards:
        assert spec.panels_of(board.id), board.id


def test_every_query_reads_only_documented_metrics_or_recording_rules():
    allowed = documented_names() | recorded() | PROMETHEUS_OWN
    rules = yaml.safe_load(RULES_FILE.read_text())
    exprs = default_spec().expressions() + [
        (r.get("record") or r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]
    ]
    unknown = {where: sorted(metric_names(e) - allowed) for where, e in exprs if metric_names(e) - allowed}
    assert not unknown, f"not in docs/metrics.md nor recorded by the rules: {unknown}"
    assert recorded() <= documented_names(), (
        f"recording rules missing from docs/metrics.md: {sorted(recorded() - documented_names())}"
    )


def test_metric_names_sees_metrics_not_labels_functions_or_keywords():
    expr = (
        'sum by (client) (rate(failwhale_journeys_total{outcome="failed", client=~"web|app"}[5s])) '
        'or on (instance) up{job!~"loadgen"} * 0 > bool 1 and client:foo:ratio offset 5m'
    )
    assert metric_names(expr) == {"failwhale_journeys_total", "up", "client:foo:ratio"}


def test_every_expression_is_valid_promql(tmp_path: Path):
    promtool = find_promtool()
    assert promtool is not None, "promtool not found: `make test` installs Prometheus with it"
    spec = default_spec()
    rules = {
        "groups": [
            {
                "name": "spec",
                "rules": [
                    {"record": f"check:{re.sub(r'[^a-z0-9_]', '_', where)}:{i}", "expr": expr}
                    for i, (where, expr) in enumerate(spec.expressions())
                ],
            }
        ]
    }
    path = tmp_path / "spec.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["panels"][0].update(dashboards=["nope"]), r"panels\.yaml:\d+: .*unknown dashboard 'nope'"),
        (lambda d: d["panels"][0].pop("title"), r"panels\.yaml:\d+: panels\.0\.title: required field is missing"),
        (lambda d: d["panels"][0].update(kind="pie"), r"panels\.yaml:\d+: panels\.0\.kind: "),
        (lambda d: d["panels"][2].pop("columns"), r"needs columns"),
        (lambda d: d.update(refresh_s=0), r"panels\.yaml:\d+: refresh_s: "),
    ],
    ids=["unknown-board", "missing-title", "unknown-kind", "table-without-columns", "zero-refresh"],
)
def test_a_broken_spec_is_one_line_naming_file_line_and_field(tmp_path: Path, edit, expected):
    data = yaml.safe_load(PANELS_FILE.read_text())
    edit(data)
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(DashboardError) as e:
        load_spec(path)
    message = str(e.value)
    assert "\n" not in message
    assert str(path) in message
    assert re.search(expected, message), message

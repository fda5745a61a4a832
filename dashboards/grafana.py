"""Grafana dashboards (importable JSON) built from the panel spec with Grafana's own SDK.

One dashboard per entry of ``panels.yaml``'s ``dashboards``: the overview and one per tier.
Every panel reads the Prometheus chosen at import time (the ``datasource`` variable), and the
spec's annotations (rollout waves, scenario steps, faults) are Grafana annotations on all of
them. ``python -m dashboards.grafana [--out DIR]`` writes the files; the copies in
``dashboards/grafana/`` are what `make test` checks against a fresh build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m

from dashboards.errors import DashboardError
from dashboards.spec import Annotation, Board, Panel, Spec, load_spec

OUT = Path(__file__).with_name("grafana")
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Grafana's grid is 24 columns wide.
WIDTH = {"timeseries": 12, "stat": 6, "table": 6}
HEIGHT = 8
COLORS = {"web": "#1f77b4", "app": "#ff7f0e"}


def _query(expr: str, legend: str, ref: str, instant: bool) -> prom_b.Dataquery:
    q = prom_b.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).datasource(DATASOURCE)
    return q.instant() if instant else q.range()


def _thresholds(panel: Panel) -> dash_b.ThresholdsConfig:
    steps = [dash_m.Threshold(value=t.value, color=t.color) for t in panel.thresholds] or [
        dash_m.Threshold(value=None, color="green")
    ]
    return dash_b.ThresholdsConfig().mode(dash_m.ThresholdsMode.ABSOLUTE).steps(steps)


def _panel(panel: Panel):
    instant = panel.kind != "timeseries"
    builder = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel}[panel.kind]()
    builder = (
        builder.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .thresholds(_thresholds(panel))
    )
    for i, q in enumerate(panel.queries):
        builder = builder.with_target(_query(q.expr, q.legend, chr(ord("A") + i), instant))
    if panel.min is not None:
        builder = builder.min(panel.min)
    if panel.max is not None:
        builder = builder.max(panel.max)
    if panel.kind == "timeseries":
        builder = (
            builder.line_width(2)
            .fill_opacity(10)
            .legend(
                common_b.VizLegendOptions()
                .display_mode(common_m.LegendDisplayMode.LIST)
                .placement(common_m.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
        )
    elif panel.kind == "stat":
        options = {
            str(m.value if m.value % 1 else int(m.value)): dash_m.ValueMappingResult(text=m.text)
            for m in panel.mappings
        }
        builder = (
            builder.mappings([dash_m.ValueMap(options=options)] if options else [])
            .color_mode(common_m.BigValueColorMode.BACKGROUND)
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    return builder


def _annotation(a: Annotation) -> dash_b.AnnotationQuery:
    return dash_b.AnnotationQuery().name(a.title).datasource(DATASOURCE).enable(True).icon_color(a.color).expr(a.expr)


def build(spec: Spec, board: Board) -> dict:
    """One Grafana dashboard as plain JSON data."""
    d = (
        dash_b.Dashboard(board.title)
        .uid(f"failwhale-{board.id}")
        .description(board.description)
        .tags(["failwhale"])
        .refresh(f"{spec.refresh_s:g}s")
        .time(f"now-{spec.window_s:g}s", "now")
        .timezone("browser")
        .editable()
        .with_variable(dash_b.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for a in spec.annotations:
        d = d.annotation(_annotation(a))
    # One link that lists every dashboard tagged "failwhale": the overview and each tier.
    d = d.link(
        dash_b.DashboardLink("failwhale")
        .type(dash_m.DashboardLinkType.DASHBOARDS)
        .tags(["failwhale"])
        .as_dropdown(False)
        .include_vars(True)
        .keep_time(True)
    )
    # Left to right, wrapping before a panel would cross the grid's right edge (the SDK's own
    # placement lets a wide panel overflow it).
    x = y = row_h = 0
    for panel in spec.panels_of(board.id):
        w = WIDTH[panel.kind]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        d = d.with_panel(_panel(panel).grid_pos(dash_m.GridPos(h=HEIGHT, w=w, x=x, y=y)))
        x, row_h = x + w, max(row_h, HEIGHT)
    data = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    # Prometheus annotations name each mark from its series' labels.
    for a, entry in zip(spec.annotations, data.get("annotations", {}).get("list", []), strict=False):
        entry["titleFormat"] = a.title
        entry["textFormat"] = a.text
        entry["step"] = "1s"
    return data


def write_all(spec: Spec, out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for board in spec.dashboards:
        path = out / f"failwhale-{board.id}.json"
        path.write_text(json.dumps(build(spec, board), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dashboards.grafana",
        description="Write failwhale's Grafana dashboards (JSON) from dashboards/panels.yaml.",
    )
    p.add_argument("--out", type=Path, default=OUT, help="folder for the JSON files (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        for path in write_all(load_spec(), args.out):
            print(path)
    except (DashboardError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

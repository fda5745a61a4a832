"""The panel spec (``panels.yaml``) as typed objects: what every dashboard shows, defined once.

Both the built-in live dashboard and the generated Grafana JSON read this; neither has panels
of its own. Loading validates the whole file up front, and a mistake is one line naming the
file, the line and the field.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configfiles.errors import ConfigError
from configfiles.yamlconf import load_model
from dashboards.errors import DashboardError

PANELS_FILE = Path(__file__).with_name("panels.yaml")
RULES_FILE = Path(__file__).parent / "rules" / "failwhale.rules.yml"

_ID = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Query(_Strict):
    expr: str = Field(min_length=1)
    # Series names, Grafana style: {{label}} is replaced by that label's value.
    legend: str = ""


class Threshold(_Strict):
    value: float | None  # None: the base colour, below every other threshold
    color: str


class Mapping(_Strict):
    value: float
    text: str


class Annotation(_Strict):
    id: str = Field(pattern=_ID)
    title: str
    expr: str = Field(min_length=1)
    text: str
    color: str


class Panel(_Strict):
    id: str = Field(pattern=_ID)
    title: str
    description: str
    kind: Literal["timeseries", "stat", "table"]
    unit: Literal["percentunit", "s", "reqps", "short"] = "short"
    min: float | None = None
    max: float | None = None
    dashboards: list[str] = Field(min_length=1)
    queries: list[Query] = Field(min_length=1)
    # False for panels that are empty on a healthy lab by design (faults, alerts, 429s).
    baseline: bool = True
    thresholds: list[Threshold] = []
    mappings: list[Mapping] = []
    columns: list[str] = []
    empty: str = "No data"

    @model_validator(mode="after")
    def _kind_fields(self) -> Panel:
        if self.kind == "table" and not self.columns:
            raise ValueError("a table panel needs columns (the labels to show)")
        if self.kind != "stat" and (self.thresholds or self.mappings):
            raise ValueError("thresholds and mappings are for stat panels only")
        return self


class Board(_Strict):
    id: str = Field(pattern=_ID)
    title: str
    description: str


class Spec(_Strict):
    refresh_s: float = Field(gt=0, le=60)
    window_s: float = Field(gt=0, le=86_400)
    clock: str
    dashboards: list[Board] = Field(min_length=1)
    annotations: list[Annotation] = []
    panels: list[Panel] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Spec:
        boards = {b.id for b in self.dashboards}
        seen: set[str] = set()
        for i, p in enumerate(self.panels):
            if p.id in seen:
                raise ValueError(f"panels[{i}]: id {p.id!r} is used twice")
            seen.add(p.id)
            unknown = [d for d in p.dashboards if d not in boards]
            if unknown:
                raise ValueError(
                    f"panels[{i}] ({p.id}): unknown dashboard {unknown[0]!r}; known: {', '.join(sorted(boards))}"
                )
        return self

    def board(self, board_id: str) -> Board:
        for b in self.dashboards:
            if b.id == board_id:
                return b
        raise DashboardError(f"no dashboard named {board_id!r}; there are: {', '.join(b.id for b in self.dashboards)}")

    def panels_of(self, board_id: str) -> list[Panel]:
        self.board(board_id)
        return [p for p in self.panels if board_id in p.dashboards]

    def expressions(self) -> list[tuple[str, str]]:
        """Every PromQL expression in the spec, with where it is (for checks)."""
        found = [(f"panels.{p.id}", q.expr) for p in self.panels for q in p.queries]
        found += [(f"annotations.{a.id}", a.expr) for a in self.annotations]
        return [*found, ("clock", self.clock)]


def load_spec(path: Path = PANELS_FILE) -> Spec:
    try:
        return load_model(Spec, path)
    except ConfigError as e:
        raise DashboardError(str(e)) from e


@cache
def default_spec() -> Spec:
    return load_spec()


# Metric names in a PromQL expression: identifiers that are neither functions, keywords, label
# names (inside braces or by/on/without lists) nor strings. Good enough for the spec's own
# queries, which tests keep to the forms used here.
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric (and recording rule) names an expression reads."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGE.sub("", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set()
    for m in _IDENT.finditer(text):
        function_call = text[m.end() :].lstrip().startswith("(")
        if not function_call and m.group().lower() not in _KEYWORDS:
            names.add(m.group())
    return names

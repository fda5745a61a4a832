"""Scenario files: a good one loads; every malformed one gets one exact line; random YAML never crashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.scenario import (
    SCHEMA_FILE,
    Inject,
    ScenarioError,
    bound_text,
    json_schema,
    load_scenario,
    parse_scenario,
    scaled_fault,
    within,
)
from services.common.faults import FaultSpec
from tests.conftest import HOSTILE_YAML

DATA = Path(__file__).parent / "data"
VALID = DATA / "valid.yaml"


def test_the_valid_scenario_loads_with_durations_in_seconds():
    s = load_scenario(VALID)
    assert s.duration == 180 and s.speed == 2
    assert [step.at for step in s.timeline] == [0, 30, 60, 90, 120, 150]
    assert s.timeline[3].restart_after == 20
    assert s.timeline[2].faults[0].kind == "error"
    assert s.source == VALID.resolve()


def test_a_load_is_at_scale_one_unless_it_says_otherwise(tmp_path):
    assert load_scenario(VALID).load.scale == 1
    assert load_scenario(edited(tmp_path / "big.yaml", setter("load", "scale", 2.5))).load.scale == 2.5


def edited(path: Path, change) -> Path:
    """A copy of the valid scenario with ``change`` applied to its data, written beside it."""
    data = yaml.safe_load(VALID.read_text())
    # The copy lives elsewhere: point the rollout at the architecture file by its full path.
    data["timeline"][1]["architecture"] = str((VALID.parent / data["timeline"][1]["architecture"]).resolve())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def setter(*keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        target = data
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


def deleter(*keys):
    def change(data):
        target = data
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return change


def swap_steps(data):
    data["timeline"][1], data["timeline"][2] = data["timeline"][2], data["timeline"][1]


def both(*changes):
    def change(data):
        for c in changes:
            c(data)

    return change


# (what is wrong, how to make it so, the field named, words of the message)
CASES = [
    ("unknown top-level key", setter("colour", "red"), "colour", "unknown field"),
    ("unknown key in load", setter("load", "rps", 5), "load.rps", "unknown field"),
    ("title missing", deleter("title"), "title", "required field is missing"),
    ("timeline missing", deleter("timeline"), "timeline", "required field is missing"),
    ("title of wrong type", setter("title", ["a"]), "title", "valid string"),
    ("users not a number", setter("load", "users", "many"), "load.users", "valid integer"),
    ("users zero", setter("load", "users", 0), "load.users", "greater than or equal to 1"),
    ("web share above 1", setter("load", "web_share", 1.5), "load.web_share", "less than or equal to 1"),
    ("scale zero", setter("load", "scale", 0), "load.scale", "greater than 0"),
    ("scale negative", setter("load", "scale", -1), "load.scale", "greater than 0"),
    ("scale above 100", setter("load", "scale", 101), "load.scale", "less than or equal to 100"),
    ("scale not a number", setter("load", "scale", "big"), "load.scale", "valid number"),
    (
        "scaled users above what a load runs",
        both(setter("load", "users", 5000), setter("load", "scale", 3)),
        "load.scale",
        "scale 3 makes 15,000 users at the peak (5,000 x 3), more than the 10,000 a load can run: "
        "use a scale of at most 2",
    ),
    (
        "scaled quick users above what a load runs",
        both(setter("load", "scale", 60), setter("quick", {"speed": 4, "users": 200})),
        "load.scale",
        "scale 60 makes 12,000 users at the peak (200 x 60), more than the 10,000 a load can run: "
        "use a scale of at most 50",
    ),
    ("unknown shape", setter("load", "shape", "sine"), "load.shape", "'evening' or 'constant'"),
    ("negative duration", setter("duration", -5), "duration", "greater than or equal to 0"),
    ("zero duration", setter("duration", 0), "duration", "greater than 0"),
    ("duration not a duration", setter("duration", "soon"), "duration", "'soon' is not a duration"),
    ("negative step time", setter("timeline", 1, "at", -1), "timeline.1.at", "greater than or equal to 0"),
    ("steps out of order", swap_steps, "timeline.2.at", "steps must be in time order"),
    ("step after the end", setter("timeline", 5, "at", "10m"), "timeline.5.at", "after the end of the scenario"),
    (
        "unknown action",
        setter("timeline", 0, "action", "explode"),
        "timeline.0",
        "does not match any of the expected tags",
    ),
    (
        "unknown fault kind",
        setter("timeline", 2, "faults", 0, "kind", "melt"),
        "timeline.2.faults.0.kind",
        "Input should be",
    ),
    (
        "fault field of another kind",
        setter("timeline", 2, "faults", 0, "latency_ms", 5),
        "timeline.2.faults.0",
        "latency_ms does not apply to a error fault",
    ),
    (
        "fault TTL too long",
        setter("timeline", 2, "faults", 0, "ttl_s", 99999),
        "timeline.2.faults.0.ttl_s",
        "less than or equal to 3600",
    ),
    ("inject without target", deleter("timeline", 2, "target"), "timeline.2.target", "required field is missing"),
    ("bad instance name", setter("timeline", 3, "target", "Time Line!"), "timeline.3.target", "should match pattern"),
    (
        "missing architecture file",
        setter("timeline", 1, "architecture", "v9.yaml"),
        "timeline.1.architecture",
        "file not found",
    ),
    (
        "invalid architecture file",
        setter("timeline", 1, "architecture", str(DATA / "valid.yaml")),
        "timeline.1.architecture",
        "not a valid architecture (" + str(DATA / "valid.yaml") + ":1: version: required field is missing)",
    ),
    ("wave share above 1", setter("timeline", 1, "waves", [0.5, 2]), "timeline.1.waves.1", "less than or equal to 1"),
    ("pause without seconds", deleter("timeline", 4, "seconds"), "timeline.4.seconds", "required field is missing"),
    ("phase ends before it starts", setter("phases", 1, "end", 10), "phases.1.end", "must end after it starts"),
    ("phase after the end", setter("phases", 1, "end", "1h"), "phases.1.end", "after the end of the scenario"),
    ("duplicate phase", setter("phases", 1, "name", "baseline"), "phases.1.name", "defined twice"),
    (
        "expectation on unknown phase",
        setter("expectations", 0, "phase", "peak"),
        "expectations.0.phase",
        "no phase named 'peak'",
    ),
    ("unknown measure", setter("expectations", 0, "measure", "vibes"), "expectations.0.measure", "Input should be"),
    (
        "expectation with two sources",
        setter("expectations", 0, "promql", "up"),
        "expectations.0",
        "exactly one of measure or promql",
    ),
    ("expectation without bound", deleter("expectations", 1, "max"), "expectations.1", "needs min, max or both"),
    (
        "expectation with min above max",
        setter("expectations", 1, "min", 0.5),
        "expectations.1",
        "min 0.5 is above max 0.2",
    ),
    (
        "probe with min above max",
        setter("steady_state", "probes", 0, "max", 0.5),
        "steady_state.probes.0",
        "min 0.99 is above max 0.5",
    ),
    ("unknown rollback action", setter("rollbacks", 0, "action", "pray"), "rollbacks.0.action", "Input should be"),
    ("incident date malformed", setter("incident", "date", "28 Dec"), "incident.date", "should match pattern"),
    (
        "quick slower than the scenario",
        setter("quick", {"speed": 1}),
        "quick.speed",
        "quick speed 1 is slower than the scenario's speed 2",
    ),
    ("quick without speed", setter("quick", {"users": 5}), "quick.speed", "required field is missing"),
    (
        "comparison without compare",
        setter("expectations", 0, "measure", "comparison.times_fewer"),
        "expectations.0.measure",
        "needs a compare section",
    ),
    ("compare with a bad name", setter("compare", {"against": "../etc"}), "compare.against", "should match pattern"),
    ("guard asked every 0 s", setter("timeline", 1, "guard_every", 0), "timeline.1.guard_every", "greater than 0"),
]


@pytest.mark.parametrize(("what", "change", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_malformed_scenario_is_one_line_naming_file_line_and_field(tmp_path, what, change, field, words):
    path = edited(tmp_path / "bad.yaml", change)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    prefix, _, rest = message.partition(": ")
    file, line = prefix.rsplit(":", 1)
    assert file == str(path)
    assert 1 <= int(line) <= len(path.read_text().splitlines())
    assert rest.startswith(f"{field}: "), message
    assert words in rest, message


def test_error_line_points_at_the_offending_step(tmp_path):
    path = edited(tmp_path / "bad.yaml", swap_steps)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    line = int(str(info.value).split(":")[1])
    assert path.read_text().splitlines()[line - 1].strip().startswith("- at:")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "expected a mapping of fields, got an empty file"),
        ("- just\n- a list\n", "expected a mapping of fields, got a list"),
        ("title: [unclosed\n", "YAML syntax error"),
        ("title: a\ntitle: b\n", "title: duplicate key"),
        ("\tbad: tab\n", "YAML syntax error"),
    ],
)
def test_broken_yaml_is_one_line(text, words):
    with pytest.raises(ScenarioError, match=words) as info:
        parse_scenario(text, "s.yaml", DATA)
    assert str(info.value).startswith("s.yaml:") and "\n" not in str(info.value)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.yaml: file not found$"):
        load_scenario(tmp_path / "nope.yaml")


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
scenario_keys = st.sampled_from(
    [
        "title",
        "description",
        "teaches",
        "incident",
        "duration",
        "speed",
        "load",
        "steady_state",
        "timeline",
        "phases",
        "expectations",
        "rollbacks",
        "at",
        "action",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        yaml_values.map(lambda v: yaml.safe_dump(v)),
        st.dictionaries(scenario_keys, yaml_values, max_size=8).map(lambda v: yaml.safe_dump(v)),
        st.text(max_size=200),
    )
)
def test_random_yaml_raises_only_scenario_errors(text):
    try:
        parse_scenario(text, "random.yaml", DATA)
    except ScenarioError as e:
        assert "\n" not in str(e)


def test_shipped_schema_is_the_models_schema():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "regenerate chaos/scenario.schema.json"


def test_failwhale_validate_reports_each_file_and_exits_2_on_any_bad(tmp_path):
    bad = edited(tmp_path / "bad.yaml", setter("speed", 0))
    result = subprocess.run(
        [sys.executable, "-m", "chaos.cli", "validate", str(VALID), str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout.startswith(f"ok: {VALID}: Timeline backend outage (6 steps, 2 phases, 3 expectations")
    assert result.stderr.strip().count("\n") == 0 and "speed: Input should be greater than 0" in result.stderr


def test_failwhale_validate_refuses_an_alias_bomb_and_deep_nesting_in_one_line_each(tmp_path):
    files = []
    for what in ("alias bomb", "5,000 levels of flow nesting"):
        path = tmp_path / f"{what.replace(' ', '-')}.yaml"
        path.write_text(HOSTILE_YAML[what][0])
        files.append(path)
    for path in files:
        result = subprocess.run(
            [sys.executable, "-m", "chaos.cli", "validate", str(path)], capture_output=True, text=True, timeout=10
        )
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().count("\n") == 0 and str(path) in result.stderr, result.stderr[-2000:]


# Every numeric field of a fault, and whether a scale multiplies it: a capacity does, a time or
# a share does not. A new numeric field fails the test below until it is put in one of these.
FAULT_SCALED = {"max_in_flight", "rate_per_s", "burst"}
FAULT_UNSCALED = {"ttl_s", "probability", "latency_ms", "jitter_ms", "status", "retry_after_s"}


def _numeric(annotation) -> bool:
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        return _numeric(args[0])
    return any(_numeric(a) for a in args) if args else annotation in (int, float)


def test_every_numeric_fault_field_has_a_scaling_decision():
    assert not FAULT_SCALED & FAULT_UNSCALED
    assert {n for n, f in FaultSpec.model_fields.items() if _numeric(f.annotation)} == FAULT_SCALED | FAULT_UNSCALED


@pytest.mark.parametrize(
    ("fault", "k", "scaled"),
    [
        (
            {"kind": "rate_limit", "bucket": "auth", "rate_per_s": 8, "burst": 16, "ttl_s": 60},
            3,
            {"rate_per_s": 24, "burst": 48},
        ),
        ({"kind": "rate_limit", "bucket": "auth", "rate_per_s": 8, "burst": 1}, 0.1, {"rate_per_s": 0.8, "burst": 1}),
        ({"kind": "capacity", "max_in_flight": 5, "ttl_s": 30, "probability": 0.5}, 3, {"max_in_flight": 15}),
        ({"kind": "capacity", "max_in_flight": 0}, 3, {}),  # nothing let through, at any scale
        ({"kind": "latency", "latency_ms": 300, "jitter_ms": 50, "ttl_s": 20}, 3, {}),
        ({"kind": "error", "status": 429, "retry_after_s": 2, "probability": 0.3}, 3, {}),
    ],
)
def test_a_scaled_fault_multiplies_its_capacities_and_keeps_its_times(fault, k, scaled):
    spec = FaultSpec(**fault)
    got = scaled_fault(spec, k)
    assert got.model_dump() == spec.model_dump() | scaled
    assert FaultSpec(**got.model_dump(exclude_defaults=True)) == got  # what a process is sent, it accepts


def test_a_scaled_inject_step_scales_each_of_its_faults():
    inject = Inject(
        at=1,
        action="inject",
        target=["auth"],
        faults=[FaultSpec(kind="rate_limit", bucket="auth", rate_per_s=4, burst=8), FaultSpec(kind="abort", ttl_s=5)],
    )
    got = inject.scaled(2)
    assert got.faults == [
        FaultSpec(kind="rate_limit", bucket="auth", rate_per_s=8, burst=16),
        FaultSpec(kind="abort", ttl_s=5),
    ]
    assert (got.at, got.target) == (1, ["auth"])


def test_a_bound_holds_on_its_edges_and_never_without_a_value():
    assert within(0.7, 0.7, 0.9) and within(0.9, 0.7, 0.9) and within(5.0, None, None)
    assert not within(0.69, 0.7, 0.9) and not within(0.91, 0.7, 0.9)
    assert not within(None, None, 1.0)
    assert bound_text(0.7, 0.9) == ">= 0.7 and <= 0.9" and bound_text(None, 0.2) == "<= 0.2"

"""The Prometheus rules in dashboards/rules/ are valid, pass their promtool unit tests, and those
tests can fail.

``dashboards/rules/tests/*.test.yml`` are promtool unit tests: series in, alerts and recorded
values out, second by second. A test that passes proves little unless it would fail when the rule
is wrong, so the mutation tests below break each alert on purpose (never fires, always fires,
one condition dropped, a recording rule it reads miscounted) and require the unit tests to catch
every break, and to catch it with the case meant for it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from chaos.lab.provision import find_promtool
from tests.conftest import ROOT

RULES = ROOT / "dashboards" / "rules" / "failwhale.rules.yml"
UNIT_TESTS = sorted((RULES.parent / "tests").glob("*.test.yml"))


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


ALERTS = [rule["alert"] for rule in _rules() if "alert" in rule]


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: ``rule``'s expr with ``old`` replaced by ``new`` (whitespace-insensitive).

    ``caught_by`` is text that must appear in promtool's failure report: the test group (or the
    kind of case) meant to catch this bug. Without it, a mutant caught by accident (say, only
    because an annotation's percentage changed) would hide a case that checks nothing.
    """

    name: str
    alert: str  # whose unit tests must catch it
    rule: str  # the alert or recording rule to break
    old: str
    new: str
    caught_by: str


# Each mutant drops or bends one condition, so each must-not-fire case is shown to be the one
# that holds that condition in place.
MUTANTS = [
    Mutant(
        "fast-pair-without-5s-window",
        "JourneyErrorBudgetBurn",
        "JourneyErrorBudgetBurn",
        "and client:failwhale_journeys_failed:ratio_rate5s > 14.4 * 0.01",
        "",
        "journeys that stop after failing do not page",
    ),
    Mutant(
        "fast-pair-without-30s-window",
        "JourneyErrorBudgetBurn",
        "JourneyErrorBudgetBurn",
        "client:failwhale_journeys_failed:ratio_rate30s > 14.4 * 0.01 and",
        "",
        "a 3 second spike of failures does not page",
    ),
    Mutant(
        "slow-pair-without-15s-window",
        "JourneyErrorBudgetBurn",
        "JourneyErrorBudgetBurn",
        "and client:failwhale_journeys_failed:ratio_rate15s > 6 * 0.01",
        "",
        "steady 8% pages through the slow pair alone, and stops soon after",
    ),
    Mutant(
        "slow-pair-without-2m-window",
        "JourneyErrorBudgetBurn",
        "JourneyErrorBudgetBurn",
        "client:failwhale_journeys_failed:ratio_rate2m > 6 * 0.01 and",
        "",
        "web outage pages within seconds, app at 8% does not",
    ),
    Mutant(
        "5s-ratio-counts-ok-as-failed",
        "JourneyErrorBudgetBurn",
        "client:failwhale_journeys_failed:ratio_rate5s",
        'outcome="failed"',
        'outcome="ok"',
        "web outage pages within seconds, app at 8% does not",
    ),
    Mutant(
        "2m-ratio-over-30s",
        "JourneyErrorBudgetBurn",
        "client:failwhale_journeys_failed:ratio_rate2m",
        "[2m]",
        "[30s]",
        "web outage pages within seconds, app at 8% does not",
    ),
    Mutant(
        "without-5pct-floor",
        "RolloutErrorsRising",
        "RolloutErrorsRising",
        "failwhale:api_errors:ratio_rate15s > 0.05 and on ()",
        "",
        "a swap with errors rising only to 4% does not page",
    ),
    Mutant(
        "without-rising-check",
        "RolloutErrorsRising",
        "RolloutErrorsRising",
        "and on () failwhale:api_errors:ratio_rate15s > 2 * "
        "((min_over_time(failwhale:api_errors:ratio_rate15s_before_swap[5m]) >= 0) or on () vector(0))",
        "",
        "errors already high before a swap are not rising and do not page",
    ),
    Mutant(
        "without-swap-check",
        "RolloutErrorsRising",
        "RolloutErrorsRising",
        'and on () sum(increase(failwhale_architecture_swaps_total{service="api"}[5m])) > 0',
        "",
        "errors rising long after the last swap do not page",
    ),
    Mutant(
        "errors-without-429",
        "RolloutErrorsRising",
        "failwhale:api_errors:ratio_rate15s",
        'code=~"5..|429"',
        'code=~"5.."',
        "errors rising right after a swap page, until the swap is 5 minutes old",
    ),
]


def _expr(rule: str) -> str:
    """The rule's expr, whitespace squashed so mutants need not copy its line breaks."""
    [expr] = [r["expr"] for r in _rules() if rule in (r.get("alert"), r.get("record"))]
    return " ".join(expr.split())


def _tests_of(alert: str) -> list[Path]:
    """The unit test files with a case for ``alert``: the others cannot catch its mutants."""
    return [p for p in UNIT_TESTS if any(case["alertname"] == alert for case in _cases(p))]


def _cases(path: Path) -> Iterator[dict]:
    for group in yaml.safe_load(path.read_text())["tests"]:
        yield from group.get("alert_rule_test") or []


def _always(alert: str) -> str:
    """An expr that fires at every instant with every label set the tests expect for ``alert``.

    Its alerts match the firing cases' labels, so what must catch it is the must-not-fire cases.
    """
    static = next(r for r in _rules() if r.get("alert") == alert).get("labels", {})
    label_sets = {
        tuple(sorted((k, v) for k, v in exp["exp_labels"].items() if k not in static))
        for path in UNIT_TESTS
        for case in _cases(path)
        if case["alertname"] == alert
        for exp in case["exp_alerts"]
    }
    exprs = []
    for labels in sorted(label_sets):
        expr = "vector(1)"
        for name, value in labels:
            expr = f'label_replace({expr}, "{name}", {json.dumps(value)}, "", "")'
        exprs.append(expr)
    return " or ".join(exprs) or "vector(1)"


@pytest.fixture(scope="module")
def promtool() -> Path:
    found = find_promtool()
    if found is None:
        # Not a skip: a rules change must not go in untested because a machine lacks promtool.
        pytest.fail("promtool not found (it ships with Prometheus): `make test` installs it")
    return found


def run(promtool: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120
    )


def test_the_rules_file_is_valid(promtool: Path):
    result = run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_must_not():
    assert ALERTS, f"no alerts in {RULES}"
    for alert in ALERTS:
        cases = [case for path in UNIT_TESTS for case in _cases(path) if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in cases), f"{alert}: no unit test case where it fires"
        assert any(not case["exp_alerts"] for case in cases), f"{alert}: no unit test case where it must not fire"


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_the_rules_pass_their_unit_tests(promtool: Path, unit_test: Path):
    result = run(promtool, "test", "rules", unit_test)
    assert result.returncode == 0, f"promtool test rules {unit_test.name}:\n{result.stdout}"


def write_suite(folder: Path, edit: tuple[str, str]) -> list[Path]:
    """A copy of the rules with ``edit`` = (rule name, new expr) applied, and of the unit tests.

    Returns the copied unit test files, whose rule_files point at the copy.
    """
    data = yaml.safe_load(RULES.read_text())
    name, expr = edit
    [rule] = [r for g in data["groups"] for r in g["rules"] if name in (r.get("alert"), r.get("record"))]
    rule["expr"] = expr
    folder.mkdir(parents=True)
    rules = folder / "failwhale.rules.yml"
    rules.write_text(yaml.safe_dump(data, sort_keys=False))
    copies = []
    for original in UNIT_TESTS:
        test = yaml.safe_load(original.read_text())
        test["rule_files"] = [str(rules)]
        copy = folder / original.name
        copy.write_text(yaml.safe_dump(test, sort_keys=False))
        copies.append(copy)
    return copies


@dataclass
class MutantRun:
    check: subprocess.CompletedProcess[str]  # promtool check rules on the mutant
    test: subprocess.CompletedProcess[str]  # promtool test rules on the alert's unit tests


@pytest.fixture(scope="module")
def mutant_runs(promtool: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[MutantRun]]]:
    """Every mutant's promtool runs, started together: each takes seconds (minutes of rule
    evaluations at 1s), and they are independent, so the test functions only wait for theirs."""
    edits: dict[str, tuple[str, tuple[str, str]]] = {}
    for alert in ALERTS:
        edits[f"{alert}-never"] = (alert, (alert, "vector(1) < 0"))
        edits[f"{alert}-always"] = (alert, (alert, _always(alert)))
    for m in MUTANTS:
        expr = _expr(m.rule)
        if m.old in expr:  # else its test says the mutant needs updating
            edits[f"{m.alert}-{m.name}"] = (m.alert, (m.rule, expr.replace(m.old, m.new)))

    base = tmp_path_factory.mktemp("mutants")

    def one(key: str, alert: str, edit: tuple[str, str]) -> MutantRun:
        copies = write_suite(base / key, edit)
        wanted = {p.name for p in _tests_of(alert)}
        check = run(promtool, "check", "rules", base / key / "failwhale.rules.yml")
        return MutantRun(check, run(promtool, "test", "rules", *[c for c in copies if c.name in wanted]))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {key: pool.submit(one, key, alert, edit) for key, (alert, edit) in edits.items()}
        yield futures
        for future in futures.values():
            future.cancel()


def test_the_copies_differ_from_the_originals_only_by_the_edit(tmp_path: Path):
    # The mutants below mean something only if copying alone changes nothing promtool reads.
    copies = write_suite(tmp_path / "copy", (ALERTS[0], "vector(1) < 0"))
    rules = yaml.safe_load((tmp_path / "copy" / "failwhale.rules.yml").read_text())
    original = yaml.safe_load(RULES.read_text())
    [alert] = [r for g in original["groups"] for r in g["rules"] if r.get("alert") == ALERTS[0]]
    alert["expr"] = "vector(1) < 0"
    assert rules == original
    for copy, test in zip(copies, UNIT_TESTS, strict=True):
        expected = {**yaml.safe_load(test.read_text()), "rule_files": [str(tmp_path / "copy" / "failwhale.rules.yml")]}
        assert yaml.safe_load(copy.read_text()) == expected


def assert_caught(result: MutantRun, caught_by: str) -> None:
    assert result.check.returncode == 0, f"the mutant is not even valid, so proves nothing:\n{result.check.stdout}"
    assert result.test.returncode != 0, f"the unit tests pass with this bug in the rules:\n{result.test.stdout}"
    assert caught_by in result.test.stdout, f"caught, but not by {caught_by!r}:\n{result.test.stdout}"


@pytest.mark.parametrize("alert", ALERTS)
def test_an_alert_that_never_fires_fails_the_unit_tests(mutant_runs: dict[str, Future[MutantRun]], alert: str):
    # "got:[]" in the report: a case expecting the alert saw none.
    assert_caught(mutant_runs[f"{alert}-never"].result(), "got:[]")


@pytest.mark.parametrize("alert", ALERTS)
def test_an_alert_that_always_fires_fails_the_unit_tests(mutant_runs: dict[str, Future[MutantRun]], alert: str):
    # "exp:[]" in the report: a case where it must not fire saw it fire.
    assert_caught(mutant_runs[f"{alert}-always"].result(), "exp:[]")


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.alert}-{m.name}")
def test_a_broken_condition_fails_the_unit_tests(mutant_runs: dict[str, Future[MutantRun]], mutant: Mutant):
    # A mutant that no longer applies would otherwise test nothing while looking green.
    assert mutant.old in _expr(mutant.rule), f"{mutant.old!r} is no longer in {mutant.rule}'s expr: update this mutant"
    assert_caught(mutant_runs[f"{mutant.alert}-{mutant.name}"].result(), mutant.caught_by)

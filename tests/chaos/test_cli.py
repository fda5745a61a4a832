"""The catalog commands refuse bad input with one line and exit 2, before starting anything."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from chaos import records
from chaos.cli import main
from chaos.cli.scenarios import check_scales
from chaos.errors import BadInput
from chaos.workshop.levers import LEVERS


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    return err


def test_scenarios_names_an_unknown_scenario(capsys, tmp_path):
    assert main(["scenarios", "--only", "twitter-2022-12-28", "no-such-thing", "--out", str(tmp_path)]) == 2
    assert "no scenario named no-such-thing" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing written


def test_quick_needs_a_quick_variant(capsys, tmp_path):
    bare = Path(__file__).parent / "data" / "quick.yaml"  # a test scenario with no quick: section
    assert main(["run", str(bare), "--quick", "--out", str(tmp_path)]) == 2
    assert "has no quick variant" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_report_refuses_a_folder_that_is_not_a_run(capsys, tmp_path):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in one_error_line(capsys)


def test_report_of_a_run_without_series_exits_2_and_still_indexes_it(capsys, tmp_path):
    run = tmp_path / "old-20260101T000000"
    run.mkdir()
    # A run that played its timeline (it has a start) and lost its series.
    played = records.Summary(scenario="old", title="Old", verdict="held", speed=1.0, duration=60.0, started=1.767e9)
    records.write(run / "summary.json", played)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "series.json" in err and err.count("\n") == 1
    assert "old-20260101T000000" in (tmp_path / "index.html").read_text()


def test_report_of_a_run_from_an_older_failwhale_says_so_in_one_line(capsys, tmp_path):
    run = tmp_path / "old-20250101T000000"
    run.mkdir()
    # As failwhale wrote it before run files had a format version: no model writes this any more.
    (run / "summary.json").write_text('{"scenario": "old", "title": "Old", "verdict": "held"}')
    assert main(["report", str(run)]) == 2
    assert "summary.json: summary format version 1; this failwhale reads version 2" in one_error_line(capsys)


@pytest.mark.parametrize("argv", [["scenarios", "--help"], ["report", "--help"], ["run", "--help"]])
def test_help_explains_each_catalog_command(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: failwhale" in capsys.readouterr().out


@pytest.mark.parametrize("scale", ["0", "-1", "lots", "101"])
@pytest.mark.parametrize("command", ["run", "scenarios"])
def test_a_scale_must_be_a_positive_number(command, scale, capsys, tmp_path):
    argv = [command, "twitter-2022-12-28"] if command == "run" else [command, "--only", "twitter-2022-12-28"]
    assert main([*argv, "--scale", scale, "--out", str(tmp_path)]) == 2
    assert f"failwhale {command}: argument --scale: " in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_attach_refuses_a_scale_it_cannot_apply(capsys, tmp_path):
    attach = Path(__file__).parent / "data" / "attach.yaml"
    assert main(["run", str(attach), "--attach", "--scale", "2", "--out", str(tmp_path)]) == 2
    assert "scale 2 needs the lab and load this run starts itself" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_catalog_checks_every_scenarios_scale_before_it_plays_the_first(tmp_path):
    # No shipped scenario has enough users to pass the limit at --scale 100; a bigger one would be
    # refused only when its turn came, after the others had played.
    small, big = tmp_path / "small.yaml", tmp_path / "big.yaml"
    valid = Path(__file__).parent / "data" / "valid.yaml"
    v1 = (valid.parent / "../../../services/architecture/v1.yaml").resolve()
    text = valid.read_text().replace("../../../services/architecture/v1.yaml", str(v1))
    small.write_text(text)
    big.write_text(text.replace("users: 20", "users: 200"))
    args = argparse.Namespace(scale=60.0, attach=False, quick=False)
    check_scales([small], args)
    with pytest.raises(BadInput, match=r"^big: scale 60 makes 12,000 users .* use a scale of at most 50$"):
        check_scales([small, big], args)


def test_workshop_lever_help_lists_every_lever_of_the_table(capsys):
    with pytest.raises(SystemExit) as info:
        main(["workshop", "lever", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines where it likes
    for lever in LEVERS.values():
        assert f"{lever.name} {lever.help}" in out


def test_each_lever_has_its_own_help_with_what_it_takes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["workshop", "lever", "scale", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--backend BACKEND" in out and "(default: timeline)" in out
    assert "--factor FACTOR" in out and "(from 0.1 to 10; default: 2)" in out and "--who WHO" in out
    assert "example: failwhale workshop lever scale --backend timeline --factor 2 --who alice" in out


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["scale", "--factor", "50"], "error: scale: factor must be between 0.1 and 10, not 50"),
        (["rate-limit", "--factor", "lots"], "error: rate-limit: factor must be a number, not 'lots'"),
        (["status", "--text", " "], "error: status: text is missing: what the update tells users"),
        (["drain"], "the following arguments are required: --replica"),
        (["declare", "--severity", "SEV9"], "argument --severity: invalid choice: 'SEV9'"),
        (["warm-cache", "--cache", "tokens"], "argument --cache: invalid choice: 'tokens'"),
    ],
)
def test_a_bad_lever_argument_is_one_line_before_anything_is_sent(argv, error, capsys, tmp_path):
    # No workshop runs here: the argument is refused before the command looks for one.
    assert main(["workshop", "lever", *argv, "--config", str(tmp_path / "no-such-lab.yaml")]) == 2
    assert error in one_error_line(capsys)

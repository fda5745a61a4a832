"""The catalog commands refuse bad input with one line and exit 2, before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos import records
from chaos.cli import main


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
    records.write(
        run / "summary.json", records.Summary(scenario="old", title="Old", verdict="held", speed=1.0, duration=60.0)
    )
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

"""The run folder's files as other tools see them: one format each, a schema that matches it,
and one clear line for a file that is not of this format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pydantic
import pytest

from chaos import records
from chaos.records import (
    FILES,
    Journal,
    JournalFile,
    LeverEntry,
    RecordError,
    Scorecard,
    Series,
    StepEntry,
    Summary,
)
from tests.chaos.conftest import make_series, make_summary


def _scorecard() -> Scorecard:
    return Scorecard(
        change_at=10.0,
        change_happened=True,
        detected=records.Pull(at=31.0, lever="declare", who="ana"),
        time_to_detect=records.Since(scenario_s=21.0, wall_s=10.5),
        levers=[records.LeverPulled(at=31.0, who="ana", lever="declare", outcome="ok", note="SEV2 declared")],
    )


def _journal(path: Path) -> Journal:
    journal = Journal(path, "twitter-2022-12-28")
    step = journal.start(StepEntry(index=0, action="rollout", name="rollout of v2", at=10.0))
    journal.end(step, "ok", waves=[["api-1"], ["api-2"]], completed_waves=2, wave_times=[1.0, 2.0])
    lever = journal.start(LeverEntry(lever="ack", who="ben", args={}, at=40.0))
    journal.end(lever, "ok", note="acknowledged", firing=["JourneyErrorBudgetBurn (web)"])
    return journal


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_committed_schemas_are_built_from_the_models(name: str):
    committed = (records.SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == records.schema(FILES[name]), f"run `python -m chaos.records` to rebuild {name}.schema.json"


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_file_the_lab_writes_meets_its_committed_schema(tmp_path: Path, name: str):
    path = tmp_path / f"{name}.json"
    if name == "journal":
        _journal(path)
    else:
        records.write(path, {"summary": make_summary, "series": make_series, "scorecard": _scorecard}[name]())
    schema = json.loads((records.SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    assert data["format_version"] == records.FORMAT_VERSION


def test_a_summary_and_series_read_back_equal_what_was_written(tmp_path: Path):
    for model, make in ((Summary, make_summary), (Series, make_series)):
        record = make()
        records.write(tmp_path / "f.json", record)
        assert records.read(tmp_path / "f.json", model) == record


def test_the_journal_is_on_disk_after_every_change_and_reads_back_typed(tmp_path: Path):
    path = tmp_path / "journal.json"
    journal = Journal(path, "calm-day")
    entry = journal.start(StepEntry(index=0, action="note", name="18:50", at=0.0))
    assert json.loads(path.read_text())["entries"][0]["outcome"] == "running"  # a crash now still leaves this
    journal.end(entry, "ok", note="an ordinary evening")
    back = records.read(path, JournalFile).entries
    assert len(back) == 1 and isinstance(back[0], StepEntry) and back[0].note == "an ordinary evening"
    assert back[0].ended is not None and back[0].ended >= back[0].started


def test_a_journal_detail_that_is_not_a_field_of_its_entry_is_refused(tmp_path: Path):
    journal = Journal(tmp_path / "journal.json", "calm-day")
    entry = journal.start(StepEntry(index=0, action="inject", name="fault", at=5.0))
    with pytest.raises(pydantic.ValidationError, match="ttl"):
        journal.end(entry, "ok", ttl="20 s")


def test_entries_are_told_apart_by_their_kind():
    entries = records.journal_entries(
        [
            {"kind": "lever", "lever": "end", "who": "the clock", "at": 300.0, "started": 1.0},
            {"kind": "restart", "target": "api-2", "started": 2.0, "outcome": "ok"},
        ]
    )
    assert [type(e).__name__ for e in entries] == ["LeverEntry", "RestartEntry"]


@pytest.mark.parametrize(
    ("model", "data", "says"),
    [
        (Summary, {"scenario": "x", "verdict": "held"}, "summary format version 1; this failwhale reads version 2"),
        (Series, {"version": 1, "series": {}}, "series format version 1; this failwhale reads version 2"),
        (Summary, {"format_version": 9}, "summary format version 9; this failwhale reads version 2"),
    ],
)
def test_a_file_of_another_format_is_one_line_saying_so(tmp_path: Path, model, data, says):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RecordError) as e:
        records.read(path, model)
    assert str(e.value).startswith(f"{path}: {says}") and "\n" not in str(e.value)


def test_an_older_format_says_to_run_the_scenario_again(tmp_path: Path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"scenario": "x"}), encoding="utf-8")
    with pytest.raises(RecordError, match="run the scenario again"):
        records.read(path, Summary)


def test_a_misspelt_field_is_named_with_its_path(tmp_path: Path):
    data = make_summary().model_dump(mode="json")
    data["phases"]["outage"]["web"]["failure_ration"] = data["phases"]["outage"]["web"].pop("failure_ratio")
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RecordError) as e:
        records.read(path, Summary)
    message = str(e.value)
    assert message.startswith(f"{path}: phases.outage.web.") and "\n" not in message


@pytest.mark.parametrize(
    ("text", "says"),
    [("{not json", "not valid JSON (line 1"), ("[1, 2]", "not a run summary (expected a JSON object)")],
)
def test_a_file_that_is_not_a_record_at_all_is_one_line(tmp_path: Path, text: str, says: str):
    path = tmp_path / "summary.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecordError, match="^" + re.escape(f"{path}: {says}")):
        records.read(path, Summary)
    with pytest.raises(RecordError, match="no such file"):
        records.read(tmp_path / "missing.json", Summary)

"""YAML files load into the real models, and every malformed one fails with ONE line
``file:LINE: field.path: message`` pointing at the place to fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from configfiles.errors import ConfigError
from configfiles.yamlconf import load_model
from services.architecture import Architecture, load_architecture
from services.config import LabConfig, load_lab_config
from tests.conftest import HOSTILE_YAML as HOSTILE

ERROR_LINE = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<field>[^:\n]+): (?P<message>[^\n]+)$")


def load_error(model, path: Path) -> re.Match[str]:
    """Load ``path`` into ``model``; return the parts of the one-line error it must fail with."""
    with pytest.raises(ConfigError) as info:
        load_model(model, path)
    message = str(info.value)
    m = ERROR_LINE.match(message)
    assert m is not None, f"not one 'file:line: field: message' line: {message!r}"
    assert m["file"] == str(path)
    return m


def write(tmp_path: Path, text: str, name: str = "conf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LAB = """\
# a small lab
host: 127.0.0.1
data_dir: data
ports:
  web: 18080
  edge: 18000
"""


def line_of(text: str, needle: str, *, top_level: bool = False) -> int:
    """1-based line of the first line containing ``needle`` (so tests follow the text, not numbers).

    ``top_level``: only a line that starts with ``needle`` (a key of the document itself).
    """
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith(needle) if top_level else needle in line:
            return i
    raise AssertionError(f"{needle!r} not in text")


def test_valid_lab_file_loads(tmp_path):
    cfg = load_model(LabConfig, write(tmp_path, LAB))
    assert cfg.ports == {"web": 18080, "edge": 18000}
    assert cfg.host == "127.0.0.1"


def test_unknown_field_names_its_line_and_path(tmp_path):
    text = LAB.replace("data_dir: data\n", "data_dir: data\ndata_dri: typo\n")
    m = load_error(LabConfig, write(tmp_path, text))
    assert m["line"] == str(line_of(text, "data_dri"))
    assert m["field"] == "data_dri"
    assert m["message"] == "unknown field"


def test_wrong_type_in_nested_mapping_names_the_full_path(tmp_path):
    text = LAB.replace("edge: 18000", "edge: lots")
    m = load_error(LabConfig, write(tmp_path, text))
    assert m["line"] == str(line_of(text, "edge: lots"))
    assert m["field"] == "ports.edge"
    assert "integer" in m["message"]


def test_missing_required_field_points_at_the_parent_mapping(tmp_path, arch_data):
    # A route without 'upstream': the error is on the line where that route's mapping starts.
    del arch_data["api"]["routes"][2]["upstream"]
    text = yaml.safe_dump(arch_data, sort_keys=False)
    path = write(tmp_path, text, "arch.yaml")
    m = load_error(Architecture, path)
    assert m["field"] == "api.routes.2.upstream"
    assert m["message"] == "required field is missing"
    route_name = arch_data["api"]["routes"][2]["name"]
    assert m["line"] == str(line_of(text, f"name: {route_name}"))


def test_missing_top_level_field_points_at_the_document(tmp_path):
    text = "# comment first\nhost: 127.0.0.1\n"
    m = load_error(LabConfig, write(tmp_path, text))
    assert m["field"] == "ports"
    assert m["message"] == "required field is missing"
    assert m["line"] == str(line_of(text, "host:"))


def test_error_deep_inside_an_architecture_backend(tmp_path, arch_data):
    arch_data["backends"]["timeline"]["capacity"] = 0
    text = yaml.safe_dump(arch_data, sort_keys=False)
    m = load_error(Architecture, write(tmp_path, text, "arch.yaml"))
    # The union member name pydantic adds ("timeline" the kind) is not part of the path.
    assert m["field"] == "backends.timeline.capacity"
    assert m["line"] == str(line_of(text, "capacity: 0"))
    assert "greater than 0" in m["message"]


def test_yaml_syntax_error_names_its_line(tmp_path):
    text = "host: 127.0.0.1\nports:\n  web: 18080\n\tedge: 18000\n"  # a tab cannot indent YAML
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_model(LabConfig, path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line_of(text, chr(9))}: YAML syntax error: ")
    assert "'\\t'" in message  # says what it tripped on


def test_bad_indentation_reports_the_offending_line(tmp_path):
    text = "host: 127.0.0.1\nports:\n  web: 18080\n edge: 18000\n"
    with pytest.raises(ConfigError) as info:
        load_model(LabConfig, write(tmp_path, text))
    assert str(info.value).startswith(f"{tmp_path / 'conf.yaml'}:{line_of(text, ' edge:')}: YAML syntax error: ")


def test_duplicate_key_is_refused_with_the_second_line(tmp_path):
    text = LAB + "  web: 18081\n"
    m = load_error(LabConfig, write(tmp_path, text))
    assert m["field"] == "ports.web"
    assert m["message"] == "duplicate key"
    assert m["line"] == str(line_of(text, "web: 18081"))


def test_duplicate_key_in_architecture_is_refused(tmp_path):
    v1 = (Path(__file__).resolve().parents[2] / "services" / "architecture" / "v1.yaml").read_text()
    text = v1.replace("version: v1\n", "version: v1\nversion: v2\n")
    m = load_error(Architecture, write(tmp_path, text, "arch.yaml"))
    assert (m["field"], m["message"]) == ("version", "duplicate key")
    assert m["line"] == str(line_of(text, "version: v2"))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_lab_config(path)
    assert str(info.value) == f"{path}: file not found"


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("", "an empty file"),
        ("# only a comment\n", "an empty file"),
        ("- a\n- b\n", "a list"),
        ("just text\n", "a str"),
    ],
)
def test_empty_or_non_mapping_top_level(tmp_path, text, got):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_architecture(path)
    assert str(info.value) == f"{path}:1: (top level): expected a mapping of fields, got {got}"


def test_every_error_is_a_single_line(tmp_path, arch_data):
    """Whatever is wrong, the message stays one line (it goes to logs and HTTP error bodies)."""
    arch_data["api"]["routes"][0]["upstream"] = "nowhere"
    text = yaml.safe_dump(arch_data, sort_keys=False)
    with pytest.raises(ConfigError) as info:
        load_architecture(write(tmp_path, text, "arch.yaml"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'arch.yaml'}:{line_of(text, 'api:', top_level=True)}: api: ")
    assert "unknown upstream 'nowhere'" in message


@pytest.mark.parametrize("model", [Architecture, LabConfig], ids=["architecture", "lab config"])
@pytest.mark.parametrize("what", list(HOSTILE))
def test_a_hostile_yaml_file_is_one_line_within_a_second(tmp_path, model, what):
    import time

    text, words = HOSTILE[what]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_model(model, path)
    assert time.monotonic() - started < 1.0
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:") and words in message, message

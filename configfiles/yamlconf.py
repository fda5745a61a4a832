"""Load YAML into typed pydantic models, reporting errors as ``file:line: field: problem``.

Both the services (lab config, architecture files) and the chaos engine (scenario files) load
YAML through here, so every malformed file gets the same one-line error that names where it is
wrong. Nothing is read at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from configfiles.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]

# Limits on every YAML file the project reads. The biggest real file is a few KB and 8 levels
# deep, and none uses aliases; these keep a hostile or broken file to a one-line error, fast:
# PyYAML's composer recurses once per level (5,000 levels: a RecursionError), and a few nested
# aliases expand into billions of nodes (a "billion laughs" file hangs the loader).
MAX_BYTES = 1_000_000
MAX_DEPTH = 64


def _check_limits(text: str, where: str) -> None:
    """Refuse a file that is too big, too deep or uses aliases, before anything is built from it.

    Walks PyYAML's event stream, which its parser produces without recursion."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise ConfigError(f"{where}:1: file is {size:,} bytes; a config file may have at most {MAX_BYTES:,}")
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        # The parser marks every event it makes from text; 1 should one ever come without a mark.
        line = 1 if event.start_mark is None else event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                f"{where}:{line}: YAML alias *{event.anchor}: aliases are not allowed (write the value out)"
            )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{where}:{line}: nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], where: str) -> None:
    """Record the 1-based line of every key path, and refuse duplicate keys (YAML would keep the last)."""
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                field = ".".join(str(p) for p in (*loc, key))
                raise ConfigError(f"{where}:{key_node.start_mark.line + 1}: {field}: duplicate key")
            seen.add(key)
            _walk(value_node, (*loc, key), lines, where)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, where)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, where: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML text into plain data plus a map from key path to line number."""
    try:
        _check_limits(text, where)
        # One parse, libyaml's when PyYAML has it (several times faster): the node tree gives the
        # lines, and the same loader builds the data from it.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        # An unclosed bracket is found at end of input, one past the last line: name the last line.
        line = min(mark.line + 1, max(1, len(text.splitlines()))) if mark else 1
        problem = (e.problem or e.context or "invalid YAML").strip()
        raise ConfigError(f"{where}:{line}: YAML syntax error: {problem}") from e
    except yaml.YAMLError as e:
        # e.g. a non-printable character; PyYAML adds a second line saying where, already known.
        first = (str(e).splitlines() or ["invalid YAML"])[0]
        raise ConfigError(f"{where}:1: YAML error: {first}") from e
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines, where)
    return data, lines


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def _data_loc(data: Any, loc: tuple[Any, ...], missing: bool) -> Loc:
    """Keep the parts of a pydantic error location that are real keys or indexes in ``data``.

    pydantic adds the names of union members to ``loc``; those are not in the file.
    """
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif missing and i == len(loc) - 1 and isinstance(part, str) and isinstance(cur, dict):
            out.append(part)  # a missing field: not in the data, but it is what is wrong
    return tuple(out)


def validate(model: type[M], data: Any, where: str, lines: dict[Loc, int] | None = None) -> M:
    """Validate plain data into ``model``; the first problem becomes a one-line ConfigError."""
    lines = lines or {}
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{where}:1: (top level): expected a mapping of fields, got {kind}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = _data_loc(data, err["loc"], missing=err["type"] == "missing")
        field = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        raise ConfigError(f"{where}:{_line_for(loc, lines)}: {field}: {msg}") from e


def read_text(path: Path) -> str:
    """A config file's text, or a ConfigError naming the file and what went wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read file: {e}") from e


def load_model(model: type[M], path: str | Path) -> M:
    """Read ``path`` and validate it into ``model``; every failure is a ConfigError naming the file."""
    path = Path(path)
    text = read_text(path)
    data, lines = parse_yaml(text, str(path))
    return validate(model, data, str(path), lines)

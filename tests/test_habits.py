"""Habits of the code that a reader relies on: no module reaches into another one's private names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("services", "chaos", "loadtest", "dashboards", "configfiles", "bench")


def _sources() -> list[Path]:
    return sorted(p for top in (*PACKAGES, "tests") for p in (ROOT / top).rglob("*.py"))


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every private name of another of our modules that ``tree`` imports or reads."""
    found: list[tuple[int, str]] = []
    modules: dict[str, str] = {}  # local name -> one of our modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                elif _is_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append((node.lineno, f"{modules[node.value.id]}.{node.attr}"))
    return found


def test_no_module_uses_another_modules_private_names():
    problems = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in _sources()
        for line, what in private_uses(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert problems == [], "make these public (with a docstring) or keep them in their module:\n" + "\n".join(problems)


def test_the_check_sees_both_ways_of_reaching_in():
    tree = ast.parse(
        "from chaos.cli import parse_waves, _hidden\n"
        "from chaos import report\n"
        "report._md_table([], [])\n"
        "report.md_table([], [])\n"
    )
    assert private_uses(tree) == [(1, "from chaos.cli import _hidden"), (3, "chaos.report._md_table")]

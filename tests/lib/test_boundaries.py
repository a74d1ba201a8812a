"""The SDK knows nothing above it: not by import (lint-imports checks that), and not by string.

import-linter cannot see ``importlib.import_module("dwellir_harvester.collectors")`` or a test for a
distribution's name: the SDK once imported the runner's package by name and picked the entry of a
collector called ``host`` itself, and so behaved differently depending on whether the runner happened
to be installed. (``host`` and ``builtin`` remain as words of the SDK's own contract: the document's
top-level key and the namespace it gives the distribution the caller names.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import dwellir_harvester.lib

SDK = Path(dwellir_harvester.lib.__file__).parent

#: Packages and distributions above the SDK.
ABOVE = (
    "dwellir_harvester.cli",
    "dwellir_harvester.config",
    "dwellir_harvester.daemon",
    "dwellir_harvester.collectors",
    "dwellir_harvester.charm",
)
DISTRIBUTIONS = ("dwellir-harvester", "dwellir-harvester-charm", "dwellir_harvester")


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant that is not a docstring, with its line."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _group_constant(tree: ast.AST) -> set[int]:
    """The line of ``ENTRY_POINT_GROUP = "dwellir_harvester.collectors"``: the plugin contract, not the runner."""
    return {
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "ENTRY_POINT_GROUP" for t in node.targets)
    }


def test_the_sdk_names_no_package_distribution_or_collector_above_it():
    found = []
    for path in sorted(SDK.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = _group_constant(tree)
        for line, text in _strings(tree):
            if line in allowed:
                continue
            above = any(text == name or text.startswith(name + ".") for name in ABOVE)
            if above or text in DISTRIBUTIONS or text == "juju-charm":
                found.append(f"{path.name}:{line}: {text!r}")
    assert found == []


def test_the_check_itself_finds_what_it_looks_for():
    tree = ast.parse(
        '"""doc"""\nimport importlib\nimportlib.import_module("dwellir_harvester.collectors")\nX = "host"\n'
    )
    assert sorted(text for _, text in _strings(tree)) == ["dwellir_harvester.collectors", "host"]

"""The docs cover what they must: every guide in the toctree, every public name on a reference page.

The Sphinx build itself (``tox -e docs``: warnings are errors, every reference must resolve) checks
that what the pages name exists; these tests check the other direction, without Sphinx: that a
guide, a public name, a public module or a command added to the code is not missing from the docs.
"""

from __future__ import annotations

import argparse
import configparser
import importlib
import re
import shlex
from pathlib import Path

import pytest

import dwellir_harvester.charm
import dwellir_harvester.lib
from dwellir_harvester.cli import build_parser

DOCS = Path(__file__).resolve().parent.parent / "docs"
REFERENCE = DOCS / "reference"
PACKAGES = {
    "dwellir_harvester.lib": dwellir_harvester.lib,
    "dwellir_harvester.charm": dwellir_harvester.charm,
}
DIRECTIVE = re.compile(
    r"^\.\. (?:auto(?:class|function|exception|data|module)|py:(?:data|class|function|exception|module))::\s*(\S+)",
    re.M,
)


def toctree_entries(text: str) -> list[str]:
    """The entries of every ``{toctree}`` block of a MyST page."""
    entries = []
    for block in re.findall(r"^```\{toctree\}\n(.*?)^```", text, re.M | re.S):
        entries += [line.strip() for line in block.splitlines() if line.strip() and not line.startswith(":")]
    return entries


def documented_names() -> set[str]:
    """Every fully qualified name a reference page documents with an autodoc or py directive."""
    names = set()
    for page in REFERENCE.glob("*.rst"):
        current = ""
        for line in page.read_text(encoding="utf-8").splitlines():
            if match := re.match(r"^\.\. (?:py:)?currentmodule::\s*(\S+)", line):
                current = match.group(1)
            elif match := DIRECTIVE.match(line):
                name = match.group(1)
                names.add(name if "." in name or not current else f"{current}.{name}")
    return names


def public_submodules(package: str) -> list[str]:
    """The package's modules whose names do not start with ``_``."""
    folder = Path(PACKAGES[package].__file__ or "").parent
    return sorted(f"{package}.{path.stem}" for path in folder.glob("*.py") if not path.stem.startswith("_"))


def test_every_guide_and_reference_page_is_in_the_toctree() -> None:
    entries = toctree_entries((DOCS / "index.md").read_text(encoding="utf-8"))
    pages = [path.relative_to(DOCS).with_suffix("").as_posix() for path in DOCS.glob("*.md")]
    pages += [path.relative_to(DOCS).with_suffix("").as_posix() for path in REFERENCE.glob("*.*")]
    missing = sorted(set(pages) - set(entries) - {"index"})
    assert not missing, f"not in the toctree of docs/index.md: {missing}"
    assert all(
        (DOCS / entry).with_suffix(".md").exists() or (DOCS / entry).with_suffix(".rst").exists() for entry in entries
    )


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_name_is_on_a_reference_page(package: str) -> None:
    documented = documented_names()
    public = PACKAGES[package].__all__
    missing = [name for name in public if f"{package}.{name}" not in documented]
    assert not missing, f"public names of {package} on no page of docs/reference/: {missing}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_module_has_a_reference_page(package: str) -> None:
    documented = documented_names()
    missing = [module for module in public_submodules(package) if module not in documented]
    assert not missing, f"public modules without an automodule page in docs/reference/: {missing}"
    for module in public_submodules(package):
        # a page documents the names its module exports (automodule follows __all__): they must exist
        assert hasattr(importlib.import_module(module), "__all__") or module.endswith(".worker"), module


def test_a_removed_name_would_be_noticed() -> None:
    """The check above reads the pages as the build does: an undocumented name is reported."""
    documented = documented_names()
    assert "dwellir_harvester.lib.harvest" in documented
    assert "dwellir_harvester.charm.Harvester" in documented
    assert "dwellir_harvester.lib.no_such_name" not in documented
    assert "dwellir_harvester.lib.jsonrpc" in documented  # a module, through its automodule


def test_every_command_has_its_help_on_the_cli_page() -> None:
    text = (REFERENCE / "cli.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```\{command-help\}[ \t]*(\S*)", text, re.M)
    verbs = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    assert sorted(name for name in shown if name) == sorted(verbs.choices)
    assert "" in shown  # the top-level help


def test_the_docs_env_treats_warnings_and_broken_references_as_errors() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(DOCS.parent / "tox.ini", encoding="utf-8")
    assert "docs" in [env.strip() for env in tox["tox"]["env_list"].split(",")]
    command = shlex.split(tox["testenv:docs"]["commands"].strip())
    assert command[0] == "sphinx-build"
    assert {"-W", "-n", "--keep-going", "-E"} <= set(command)

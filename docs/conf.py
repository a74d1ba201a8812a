"""Sphinx configuration: the Markdown guides and the API reference of the three packages.

Build (as ``tox -e docs`` does, warnings are errors and every reference must resolve)::

    sphinx-build -W --keep-going -n -E -b html docs docs/_build/html

The build works offline: no intersphinx, nothing fetched. References to types of other projects
(ops, the standard library) cannot resolve without an inventory; each one the API names is listed
in ``nitpick_ignore`` below, by name, so a broken reference to one of our own names still fails.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docstrings import prepare_docstring
from sphinx.util.typing import stringify_annotation

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Links from a guide to a file outside docs/ (``../examples/example-charm/``) work on GitHub as
# they are; in the built docs they point at the same file on GitHub (see _link_outside_docs).
REPOSITORY = "https://github.com/dwellir-public/dwellir-harvester"
BRANCH = "main"

project = "Dwellir Harvester"
author = "Dwellir"
copyright = "Dwellir"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"

# The guides link to their own sections (``[§8](#8-trust-model)``): GitHub's anchors.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# Google-style docstrings (ruff's D rules, convention google), as ops writes them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# ``Attributes:`` sections as fields of their class: autodoc documents a NamedTuple's fields as
# members already, and two descriptions of one attribute are a duplicate-object warning.
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Annotations as written in the source (``Mapping[str, Any]``), not expanded aliases.
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = "Dwellir Harvester"
html_static_path: list[str] = []

# Types of other projects that the API's signatures and docstrings name. Without intersphinx (the
# build is offline) Sphinx cannot link them; each is listed by name so that nitpicky mode still
# fails on a reference to anything else, our own names included.
_EXTERNAL_TYPES = [
    # ops (where its classes are defined): the charm helpers take and give ops objects
    "ops.framework.BoundEvent",
    "ops.charm.ActionEvent",
    "ops.charm.CharmBase",
    "ops.framework.Object",
    "ops.model.StatusBase",
    # jsonschema (the SDK's one dependency)
    "jsonschema.ValidationError",
    # the standard library
    "abc.ABC",
    "argparse.ArgumentParser",
    "collections.abc.Callable",
    "collections.abc.Iterable",
    "collections.abc.Iterator",
    "collections.abc.Mapping",
    "collections.abc.Sequence",
    "concurrent.futures.Future",
    "os.PathLike",
    "pathlib.Path",
    "subprocess.Popen",
    "threading.Event",
    "threading.Thread",
    "types.ModuleType",
    "typing.TypedDict",
]
# Private names that public signatures mention (the SDK keeps its API tiny, STYLE.md): a record the
# public API returns without exporting its class, a type variable, the pre-forked worker.
_PRIVATE_TYPES = [
    "CollectorMeta",
    "dwellir_harvester.lib._loader.CollectorMeta",
    "dwellir_harvester.lib._loader.LoadProblem",
    "dwellir_harvester.lib._prefork.Prestarted",
    "dwellir_harvester.charm.testing._T",
]
nitpick_ignore = [
    (role, name) for name in _EXTERNAL_TYPES + _PRIVATE_TYPES for role in ("py:class", "py:exc", "py:obj")
]


def _link_outside_docs(app: Sphinx, doctree: nodes.document) -> None:
    """Point a guide's relative link to a repository file outside ``docs/`` at that file on GitHub.

    MyST turns a link to a file that is not a document into a download, a link to a folder into a
    missing reference, and a link to a Markdown file outside ``docs/`` into a missing document. The
    same Markdown works on GitHub, where the relative link opens the file; here it becomes the
    file's GitHub URL. A link to a path that does not exist is left alone, so it still fails.
    """
    docdir = (DOCS / app.env.docname).parent
    links: list[nodes.Element] = [
        *doctree.findall(addnodes.download_reference),
        *doctree.findall(addnodes.pending_xref),
    ]
    for node in links:
        if node.get("reftype") != "myst":
            continue
        target = str(node.get("reftarget", ""))
        if node.get("refdomain") == "doc":
            # a Markdown file outside docs/: MyST names it by its path without suffix, relative to
            # docs/ ("../charms/x/README") or absolute (newer versions)
            if target in app.env.found_docs:
                continue
            candidates = [DOCS / (target + suffix) for suffix in app.config.source_suffix]
            fragment = str(node.get("reftargetid") or "")
        elif node.get("refdomain") in (None, ""):
            path_part, _, fragment = target.partition("#")
            candidates = [docdir / path_part] if path_part else []
        else:
            continue
        found = [path.resolve() for path in candidates if path.exists()]
        if not found or found[0].is_relative_to(DOCS) or not found[0].is_relative_to(ROOT):
            continue
        path = found[0]
        uri = f"{REPOSITORY}/{'tree' if path.is_dir() else 'blob'}/{BRANCH}/{path.relative_to(ROOT).as_posix()}"
        if fragment:
            uri += f"#{fragment}"
        reference = nodes.reference("", "", internal=False, refuri=uri)
        reference += node.children
        node.replace_self(reference)


def _data_docstring(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
    """Document a constant by its ``#:`` comment, also where a package re-exports it.

    Sphinx finds a constant's ``#:`` comment only in the module the page names, so a constant that
    ``dwellir_harvester.lib`` imports from a private module would get its type's docstring (that of
    ``str`` or ``tuple``), and a type alias none. The comment is looked up in the package's
    modules instead; a public constant without one is a warning, which fails the build.
    """
    if what != "data":
        return
    type_doc = [line for line in prepare_docstring(inspect.getdoc(type(obj)) or "") if line.strip()]
    if type_doc == [line for line in lines if line.strip()]:
        lines.clear()  # not this constant's documentation
    modname, _, attribute = name.rpartition(".")
    if ("", attribute) in ModuleAnalyzer.for_module(modname).find_attr_docs():
        return
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith(f"{modname}.") and getattr(module, attribute, None) is obj:
            comment = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", attribute))
            if comment:
                lines[:0] = [*comment, ""]  # before autodoc's "alias of ..." of a type alias
                return
    if not lines:
        logger.warning("%s has no '#:' comment to document it", name, type="autodoc")


def _typed_dict_keys(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
    """List a ``TypedDict``'s keys and their types under its docstring (autodoc shows none)."""
    if what != "class" or not isinstance(obj, type) or not typing.is_typeddict(obj):
        return
    # the annotations as written (``list[Problem]``, ``Status``): the names this page documents
    hints: dict[str, Any] = obj.__annotations__
    required = getattr(obj, "__required_keys__", frozenset(hints))
    lines.extend(["", "Keys:", ""])
    for key, hint in hints.items():
        shown = hint.__forward_arg__ if isinstance(hint, typing.ForwardRef) else hint
        if not isinstance(shown, str):
            shown = stringify_annotation(shown, "smart")
        optional = "" if key in required else " (optional)"
        lines.append(f"- ``{key}``: ``{shown}``{optional}")
    lines.append("")


def _bases(app: Sphinx, name: str, obj: object, options: Any, bases: list[type]) -> None:
    """Show a ``TypedDict`` as one (a functional-form base shows ``dict``), and no ``object`` base."""
    if isinstance(obj, type) and typing.is_typeddict(obj):
        bases[:] = [typing.TypedDict]  # type: ignore[list-item]
    elif bases == [object]:
        bases.clear()


def _skip_tuple_fields(app: Sphinx, what: str, name: str, obj: object, skip: bool, options: Any) -> bool | None:
    """Leave out a NamedTuple's field members ("Alias for field number 0").

    The class's docstring describes its fields (an ``Attributes:`` section, or its text).
    """
    if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


class CommandHelp(Directive):
    """``{command-help}`` with an optional sub-command: the ``dwellir-harvester`` parser's help text.

    Generated from ``dwellir_harvester.cli.build_parser()`` so the page cannot drift from the
    command, without another dependency (the help is shown as argparse prints it).
    """

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        """Render the help of the command, or of its sub-command named by the argument."""
        from dwellir_harvester.cli import build_parser

        parser = build_parser()
        if self.arguments:
            verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
            if self.arguments[0] not in verbs:
                raise self.error(f"no command {self.arguments[0]!r}; the commands: {', '.join(verbs)}")
            parser = verbs[self.arguments[0]]
        text = parser.format_help()
        return [nodes.literal_block(text, text, language="text")]


def _prose_attribute_docstrings(app: Sphinx) -> None:
    """Read the docstring of a property, attribute or constant as prose, as the other docstrings.

    Napoleon reads the first line of such a docstring as ``type: description`` (Google style's
    inline attribute type). Here the types come from the annotations (mypy strict), and the first
    line is a sentence that often has a colon ("The collectors the charm contributes: ..."), which
    napoleon would turn into a type and a broken reference. So napoleon is handed these docstrings
    as a plain object's: ``Args:``/``Returns:`` sections still work, the colon stays text.
    """
    from sphinx.ext.napoleon import _process_docstring

    prose = {"attribute", "data", "property"}

    def process(app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]) -> None:
        _process_docstring(app, "object" if what in prose else what, name, obj, options, lines)  # type: ignore[arg-type]

    for listener in list(app.events.listeners["autodoc-process-docstring"]):
        if listener.handler is _process_docstring:
            app.disconnect(listener.id)
            app.connect("autodoc-process-docstring", process, priority=listener.priority)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the link rewrite (before Sphinx collects downloads) and the help directive."""
    app.connect("builder-inited", _prose_attribute_docstrings)
    app.connect("autodoc-process-docstring", _data_docstring, priority=400)
    app.connect("autodoc-process-docstring", _typed_dict_keys)
    app.connect("autodoc-process-bases", _bases)
    app.connect("autodoc-skip-member", _skip_tuple_fields)
    app.connect("doctree-read", _link_outside_docs, priority=100)
    app.add_directive("command-help", CommandHelp)
    return {"parallel_read_safe": True}

"""Strict, bounded YAML for the files the runner reads (config files, drop-ins, a token file).

::

    from dwellir_harvester.config._yaml import load_yaml_file, parse_yaml

    data = load_yaml_file("/etc/dwellir-harvester/config.yaml")   # JSON-like data, or ConfigError

What comes back is JSON-like: mappings with string keys, lists, strings, finite numbers, booleans
and null. Everything else is a ``ConfigError`` of one line naming the file, and the line and key
path where there is one:

- a file that is not a regular file (a FIFO, a device, a directory) or larger than
  ``MAX_FILE_BYTES``; it is opened without blocking and never read past the bound;
- bytes that are not UTF-8 (the byte offset is named);
- more than ``MAX_VALUES`` values, nesting deeper than ``lib.limits.MAX_DEPTH``, aliases that
  expand to more than ``MAX_ALIASED`` values ("billion laughs") or refer to a collection that
  holds them;
- a key that appears twice in one mapping, and a key that YAML does not read as a string
  (``on`` is read as true, ``1`` as a number, ``~`` as null: quote it);
- numbers that are not finite (``.inf``, ``.nan``, ``1.0e400``) or larger than
  ``2**MAX_INT_BITS``, dates (``2024-01-01``: quote it), ``!!binary``, ``!!set``, ``!!omap``,
  ``!!pairs`` and any other tag.

Aliases and merge keys (``<<: *defaults``) are accepted within those bounds, because the YAML
that PyYAML itself writes uses them for repeated values.
"""

from __future__ import annotations

import math
import os
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dwellir_harvester.lib.files import read_bytes
from dwellir_harvester.lib.limits import MAX_DEPTH, MAX_INT_BITS, one_line
from dwellir_harvester.lib.redact import is_sensitive

from ._errors import ConfigError

__all__ = ["MAX_ALIASED", "MAX_FILE_BYTES", "MAX_VALUES", "load_yaml_file", "parse_yaml", "read_bounded"]

#: The largest file read, in bytes (1 MiB).
MAX_FILE_BYTES = 1 << 20
#: The most values (keys, items, scalars) one document may hold, counting each alias in full.
MAX_VALUES = 100_000
#: The most values all the aliases of one document may expand to, together.
MAX_ALIASED = 10_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS = {f"{_TAG}seq", f"{_TAG}map"}
_MERGE_TAGS = {f"{_TAG}merge", f"{_TAG}value"}
# Longer than any integer of MAX_INT_BITS bits in any base YAML knows (binary aside, which is rare).
_MAX_INT_TEXT = MAX_INT_BITS // 3 + 16


def read_bounded(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """Return the bytes of the regular file ``path``, refusing anything else or anything larger than ``limit``.

    ``dwellir_harvester.lib.files.read_bytes`` does the reading: a FIFO or a device is never
    waited on or opened, and at most ``limit + 1`` bytes are ever read.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes.

    Returns:
        The file's content.

    Raises:
        ConfigError: naming the file, when it is missing, cannot be read, is not a regular file, or is too large.
    """
    file = os.fspath(path)
    try:
        data = read_bytes(file, limit)
    except ValueError as err:  # its message starts with the path
        raise ConfigError(str(err).removeprefix(file).strip(), file=file) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", file=file) from err
    if data is None:
        raise ConfigError("cannot read: No such file or directory", file=file)
    return data


def load_yaml_file(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> Any:
    """Read and parse one YAML file strictly (see the module docstring).

    Args:
        path: the file.
        limit: the largest size accepted, in bytes.

    Returns:
        JSON-like data (``None`` for an empty file).

    Raises:
        ConfigError: one line naming the file, and the line and key where there is one.
    """
    file = os.fspath(path)
    data = read_bounded(file, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"not valid UTF-8 at byte {err.start} (line {line})", file=file) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> Any:
    """Parse one YAML document strictly (see the module docstring).

    Args:
        text: the document.
        file: where it came from, for errors.

    Returns:
        JSON-like data (``None`` for an empty document).

    Raises:
        ConfigError: one line naming ``file``, and the line and key where there is one.
    """
    loader = None
    try:
        loader = _StrictLoader(text, file)  # the reader checks every character here
        node = loader.get_single_node()
        if node is None:
            return None
        loader.check(node, ())
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = one_line(err.problem or err.context or type(err).__name__, 200)
        if err.context and err.context.startswith("found duplicate anchor") and err.context_mark:
            problem = f"{one_line(err.context.partition(';')[0], 200)} (first at line {err.context_mark.line + 1})"
        raise ConfigError(f"not valid YAML{where}: {problem}", file=file) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise ConfigError(f"not valid YAML at line {line}: character U+{code:04X} is not allowed", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def _path(parts: tuple[str | int, ...]) -> str | None:
    return ".".join(str(p) for p in parts) or None


def _secret(path: tuple[str | int, ...]) -> bool:
    """Whether a key on ``path`` is sensitive (``auth_tokens``, ``password``): its values are not shown."""
    return any(isinstance(part, str) and is_sensitive(part) for part in path)


def _tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _reading(value: object) -> str:
    """How YAML read a scalar, in words: ``true``, ``null``, ``a number``..."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds on composition and checks before construction."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self._open: list[str | None] = []  # the anchors of the collections being composed
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth), aliases expanded
        self._checked: set[int] = set()
        self._values = 0
        self._aliased = 0

    def _refuse(self, message: str, node_or_mark: Any, path: tuple[str | int, ...] = ()) -> NoReturn:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        raise ConfigError(f"line {mark.line + 1}: {message}", file=self.file, key=_path(path))

    # --- composition: depth, alias expansion and cycles, bounded before anything is built ------

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                self._refuse(f"the alias *{one_line(event.anchor, 40)} refers to a collection that holds it", event)
            node = self._composed(super().compose_node(parent, index))
            size = self._size[id(node)][0]
            self._aliased += size
            if self._aliased > MAX_ALIASED:
                self._refuse(f"aliases expand to more than {MAX_ALIASED} values", event)
            self._count(size, event)
            return node
        self._count(1, event)
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            if len(self._open) >= MAX_DEPTH:
                self._refuse(f"nested more than {MAX_DEPTH} levels deep", event)
            self._open.append(event.anchor)
        try:
            node = self._composed(super().compose_node(parent, index))
        finally:
            if collection:
                self._open.pop()
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            self._size[id(node)] = (1, 0)
            return node
        sizes = [self._size[id(child)] for child in children]
        depth = 1 + max((d for _, d in sizes), default=0)
        if depth > MAX_DEPTH:
            self._refuse(f"nested more than {MAX_DEPTH} levels deep (through aliases)", node)
        self._size[id(node)] = (1 + sum(size for size, _ in sizes), depth)
        return node

    def _count(self, values: int, event: Any) -> None:
        # The running total equals the document's size with every alias expanded: each node is
        # counted where it stands, and again (with all it holds) at each alias to it.
        self._values += values
        if self._values > MAX_VALUES:
            self._refuse(f"holds more than {MAX_VALUES} values (each alias counted in full)", event)

    @staticmethod
    def _composed(node: Node | None) -> Node:
        if node is None:  # PyYAML composes a node for every event it accepts
            raise yaml.composer.ComposerError(problem="expected a node")
        return node

    # --- checks on the composed nodes, with the key path of each ----------------------------

    def check(self, node: Node, path: tuple[str | int, ...]) -> None:
        """Refuse what is not JSON-like: non-string or duplicate keys, odd numbers, dates, tags."""
        if id(node) in self._checked:  # an alias: its target was checked where it stands
            return
        self._checked.add(id(node))
        if isinstance(node, ScalarNode):
            self._scalar(node, path)
            return
        if node.tag not in _COLLECTION_TAGS:
            self._refuse(f"{_tag(node.tag)} values are not accepted", node, path)
        if isinstance(node, SequenceNode):
            for index, child in enumerate(node.value):
                self.check(child, (*path, index))
            return
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag in _MERGE_TAGS:  # ``<<: *defaults``: the merged mappings are checked as they stand
                self.check(value_node, path)
                continue
            key = self._key(key_node, path)
            label = "<key>" if _secret(path) else key  # below a sensitive key, even keys are not shown
            if key in first:
                self._refuse(f"duplicate key (first at line {first[key]})", key_node, (*path, label))
            first[key] = key_node.start_mark.line + 1
            self.check(value_node, (*path, label))

    def _key(self, node: Node, path: tuple[str | int, ...]) -> str:
        if not isinstance(node, ScalarNode):
            kind = "list" if isinstance(node, SequenceNode) else "mapping"
            self._refuse(f"a {kind} cannot be a key", node, path)
        shown = "<key>" if _secret(path) else one_line(node.value, 40)
        key = self._scalar(node, (*path, shown), what=f"`{shown}`" if shown != "<key>" else "a key")
        if not isinstance(key, str):
            self._refuse(f"`{shown}` is read as {_reading(key)}; quote it", node, (*path, shown))
        return key

    def _scalar(self, node: ScalarNode, path: tuple[str | int, ...], what: str | None = None) -> Any:
        # The value of a sensitive key (auth_tokens, a password option) is never shown.
        shown = what or ("the value" if _secret(path) else f"`{one_line(node.value, 40)}`")
        if node.tag == f"{_TAG}timestamp":
            self._refuse(f"{shown} is read as a date; quote it", node, path)
        if node.tag not in _SCALAR_TAGS:
            self._refuse(f"{_tag(node.tag)} values are not accepted", node, path)
        if node.tag == f"{_TAG}int" and len(node.value) > _MAX_INT_TEXT:
            self._refuse(f"the number is larger than 2**{MAX_INT_BITS}", node, path)
        try:
            value = self.construct_object(node)
        except Exception:  # noqa: BLE001 - PyYAML's constructors raise what they meet (`!!int ''`: IndexError)
            self._refuse(f"{shown} cannot be read as {_tag(node.tag)}", node, path)
        if isinstance(value, float) and not math.isfinite(value):
            self._refuse(f"{shown} is not a finite number", node, path)
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            self._refuse(f"the number is larger than 2**{MAX_INT_BITS}", node, path)
        return value

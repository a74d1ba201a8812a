r"""Run one collector from the shell and print its entry as JSON.

::

    python -m dwellir_harvester.lib.run peers:PeersCollector --collector-path collectors \
        --option rpc_url=http://127.0.0.1:9944 --options-file fixture.json

``module`` is found in the ``--collector-path`` directories first (imported the way the harvester
imports plugins, so relative imports of ``_helpers`` work), then among installed modules; it may
also be a file path (``collectors/peers.py:PeersCollector``). ``:Class`` may be left out when the
module defines a single collector. ``--option KEY=VALUE`` values are read as JSON when they parse
(``port=9944`` is a number, ``debug=true`` a boolean) and as text otherwise; they override the
``--options-file`` (a JSON object).

Exit status: 0 success or partial, 1 failed or timeout, 2 a usage error (a module that cannot be
imported, a class that is not a collector, a bad option), with a one-line message on stderr and a
traceback only with ``--debug``. When the reader of the output leaves before the whole entry is
written (``... | head``), the harness stops quietly, nothing on stderr, with exit status 1: the
entry was not delivered (Python's documented recipe for ``EPIPE``; a shell shows no ``141``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._collector import CollectorBase
from ._engine import build_document, run_spec
from ._errors import CollectorError
from ._loader import (
    CollectorSpec,
    _classify_module,
    _import_plugin,
    _plugin_package,
    check_plugin_dir,
    spec_for_class,
)
from ._schema import validate_output
from ._types import FAILING, Entry
from .files import unsafe_reason
from .limits import describe_error, seconds

__all__ = ["UsageError", "main"]


class UsageError(Exception):
    """A problem with what was asked for on a command line: exit status 2, one line, no traceback.

    The runner's ``dwellir-harvester`` command raises it too.
    """


def _import_from_dirs(module: str, directories: Sequence[Path]) -> tuple[types.ModuleType, str] | None:
    head = module.split(".", 1)[0]
    for directory in directories:
        for entry in (directory / f"{head}.py", directory / head):
            if entry.is_file() or (entry / "__init__.py").is_file():
                package = _plugin_package(directory)
                return importlib.import_module(f"{package}.{module}"), f"path:{entry}"
    return None


def _where(module: str, err: ModuleNotFoundError, directories: Sequence[Path]) -> str:
    """Where ``module`` was looked for, or the hint to pass ``--collector-path`` when none was given.

    No hint when what is missing is something the module itself imports: a plugin dir is not meant.
    """
    if directories:
        return f" (searched {', '.join(map(str, directories))} and installed modules)"
    missing = err.name or ""
    if missing and (module == missing or module.startswith(missing + ".")):
        return " (is it in a plugin directory? pass --collector-path DIR)"
    return ""


def _load_module(module: str, directories: Sequence[Path]) -> tuple[types.ModuleType, str | None]:
    """The module, and the source ``collect`` reports for it (``path:<file>``; None when installed)."""
    try:
        if module.endswith(".py") or "/" in module:
            path = Path(module)
            if not path.is_file():
                raise UsageError(f"{module}: no such file")
            reason = unsafe_reason(path)
            if reason:
                raise UsageError(f"{module}: refused: it {reason}")
            entry = check_plugin_dir(path.parent) / path.name  # as discovery names it: resolved directory
            return _import_plugin(_plugin_package(entry.parent), entry), f"path:{entry}"
        found = _import_from_dirs(module, directories)
        return found if found is not None else (importlib.import_module(module), None)
    except UsageError:
        raise
    except ModuleNotFoundError as err:
        raise UsageError(f"cannot import {module}: {err}{_where(module, err, directories)}") from err
    except CollectorError as err:
        raise UsageError(str(err)) from err
    except BaseException as err:
        raise UsageError(f"importing {module} failed: {describe_error(err)}") from err


def _resolve(target: str, paths: Sequence[str]) -> tuple[type[CollectorBase], str | None]:
    """The collector class and the source ``collect`` reports for it (None: an installed module)."""
    module_name, _, class_name = target.rpartition(":") if ":" in target else (target, "", "")
    if not module_name:
        raise UsageError(f"{target!r}: expected module:Class")
    try:
        directories = [check_plugin_dir(p) for p in paths]
    except CollectorError as err:
        raise UsageError(str(err)) from err
    module, source = _load_module(module_name, directories)
    if not class_name:
        specs = _classify_module(module, "plugins", source or module_name)
        found = [spec.cls for spec in specs if isinstance(spec, CollectorSpec)]
        if len(found) != 1:
            names = ", ".join(c.__name__ for c in found) or "none"
            raise UsageError(
                f"{module_name} defines {len(found)} collectors ({names}); name one as {module_name}:Class"
            )
        return found[0], source
    cls = getattr(module, class_name, None)
    if cls is None:
        raise UsageError(f"{module_name} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, CollectorBase)):
        raise UsageError(f"{target} is not a collector (not a subclass of CollectorBase)")
    return cls, source


def load_collector_class(target: str, paths: Sequence[str] = ()) -> type[CollectorBase]:
    """Resolve ``module:Class`` (or ``module`` with one collector) to a collector class.

    Args:
        target: ``module:Class``, ``module`` (when it defines one collector), or ``path/to/file.py:Class``.
        paths: plugin directories searched for ``module`` before the installed modules.

    Returns:
        The collector class.

    Raises:
        UsageError: the module cannot be imported, or the class is missing or not a collector.
    """
    return _resolve(target, paths)[0]


def _run(spec: CollectorSpec, options: dict[str, Any], timeout: float | None, validate: bool) -> Entry:
    """``testing.run_collector`` for a spec: the entry's ``meta.source`` is the one ``collect`` gives.

    That is ``path:<file>`` (``path:<package dir>``) for a collector from a plugin directory or a
    file, ``class:<module>.<Class>`` for one from an installed module.
    """
    entry = run_spec(spec, options, timeout, validate)
    if validate:
        meta = entry["meta"]
        validate_output(build_document({spec.name: entry}, meta["collection_time"], meta["duration_ms"] / 1000))
    return entry


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_options(options_file: str | None, pairs: Sequence[str]) -> dict[str, Any]:
    """Options from a JSON file, then ``KEY=VALUE`` pairs on top."""
    options: dict[str, Any] = {}
    if options_file:
        try:
            with open(options_file, encoding="utf-8") as f:
                loaded = json.load(f)
        except OSError as err:
            raise UsageError(f"--options-file {options_file}: {err.strerror or err}") from err
        except ValueError as err:
            raise UsageError(f"--options-file {options_file}: not valid JSON: {err}") from err
        if not isinstance(loaded, dict):
            raise UsageError(f"--options-file {options_file}: expected a JSON object, got {type(loaded).__name__}")
        options.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = _parse_value(value)
    return options


def _seconds(text: str) -> float:
    try:
        return seconds(float(text), "--timeout")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--timeout ")) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dwellir_harvester.lib.run",
        description="Run one collector class and print its entry (meta and data) as JSON.",
        epilog="Exit status: 0 success or partial, 1 failed or timeout (or the reader left early), 2 usage error.",
    )
    parser.add_argument("collector", help="module:Class, module (one collector), or path/to/file.py:Class")
    parser.add_argument(
        "--collector-path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to import the module from (repeatable; searched before installed modules)",
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a constructor option (repeatable)"
    )
    parser.add_argument("--options-file", metavar="FILE", help="a JSON object of constructor options")
    parser.add_argument("--timeout", type=_seconds, metavar="S", help="seconds before the collector is abandoned")
    parser.add_argument("--no-validate", action="store_true", help="do not check the data against any schema")
    parser.add_argument("--indent", type=int, default=2, metavar="N", help="JSON indentation (default: 2)")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG and show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness with ``argv`` (default: the command line); return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        cls, source = _resolve(args.collector, args.collector_path)
        options = load_options(args.options_file, args.option)
        entry = _run(spec_for_class(cls, source), options, args.timeout, not args.no_validate)
    except (UsageError, CollectorError, TypeError, ValueError, OSError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(entry, indent=args.indent or None), flush=True)
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 1 if entry["meta"]["status"] in FAILING else 0


if __name__ == "__main__":
    sys.exit(main())

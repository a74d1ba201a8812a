"""Collector discovery: find, load, classify, merge.

Sources, in this order, later ones overriding earlier ones with a warning that names both:

1. built-ins: the entry points (group ``dwellir_harvester.collectors``) of the distribution the
   caller names as ``builtin_distribution`` (the runner names itself); shown as ``builtin:``;
2. the entry points of every other distribution in that group (a collector class or a module);
3. filesystem plugin paths, in the order given (each ``*.py`` file and package, in name order).

The SDK knows no distribution by name: without ``builtin_distribution`` every entry point is an
ordinary one. Every collector stays reachable as ``namespace::name`` (``builtin::null``,
``my-dist::peers``, ``plugins::peers``) and as ``source::name`` (``path:/srv/plugins/peers.py::peers``),
so an overridden one can still be selected. A plugin that fails to import, or whose class attributes
(``NAME``, ``VERSION``, ``COLLECTOR_TYPE``, ``TIMEOUT``) are not usable, is logged and recorded in
``Registry.problems``; it never stops discovery. Those attributes are read and checked here, once:
the engine only reads the spec.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ._collector import DEFAULT_TIMEOUT, NAME_PATTERN, CollectorBase, check_options
from ._errors import PluginPathError, UnknownCollectorError
from .files import unsafe_reason
from .limits import MAX_TIMEOUT, describe_error, one_line

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dwellir_harvester.collectors"
#: The environment variable of plugin directories (``os.pathsep``-separated), read by ``env_plugin_paths()``.
PATHS_ENV = "HARVESTER_COLLECTOR_PATHS"
_PLUGIN_ROOT = "_dwellir_harvester_plugins"


class CollectorMeta(NamedTuple):
    """A collector class's attributes, read and checked once: what the engine reports in ``meta``."""

    version: str
    collector_type: str
    timeout: float


class CollectorSpec(NamedTuple):
    """A discovered collector and where it came from.

    ``namespace`` is ``builtin``, the distribution name of an entry point, or ``plugins``;
    ``source`` is the precise origin reported in the entry's ``meta.source``;
    ``overrides`` lists the sources of the collectors of the same name that this one replaced;
    ``meta`` holds the class's checked attributes (``CollectorSpec.for_class`` fills it; a spec
    built by hand without it has them read from the class when it runs).
    """

    name: str
    cls: type[CollectorBase]
    namespace: str
    source: str
    overrides: tuple[str, ...] = ()
    meta: CollectorMeta | None = None

    @classmethod
    def for_class(
        cls, collector: type[CollectorBase], namespace: str = "class", source: str | None = None
    ) -> CollectorSpec:
        """A checked spec for a collector class given directly (not discovered).

        Raises:
            TypeError: the class is not a usable collector (its message says why).
        """
        found = _spec(collector, namespace, source or f"class:{_qualname(collector)}")
        if isinstance(found, str):
            raise TypeError(f"{_qualname(collector)} {found}")
        return found

    @property
    def identity(self) -> tuple[str, str]:
        """``(source, name)``: the same collector across reloads, whatever its class object."""
        return (self.source, self.name)

    @property
    def qualified_names(self) -> tuple[str, str]:
        """``namespace::name`` and ``source::name``, the names that select this spec exactly."""
        return (f"{self.namespace}::{self.name}", f"{self.source}::{self.name}")

    def checked_meta(self) -> CollectorMeta:
        """The class's checked attributes (from discovery, or read now for a spec built by hand).

        Raises:
            TypeError: an attribute is not usable (its message says which and why).
        """
        if self.meta is not None:
            return self.meta
        found = _read_meta(self.cls)
        if isinstance(found, str):
            raise TypeError(f"{_qualname(self.cls)} {found}")
        return found

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``CollectorOptionError`` unless the constructor takes exactly these options."""
        check_options(self.cls, options)


class LoadProblem(NamedTuple):
    """A plugin that could not be used: where it is and why."""

    where: str
    message: str


def spec_for_class(cls: type[CollectorBase], source: str | None = None) -> CollectorSpec:
    """A spec for a collector class given directly (not discovered); ``TypeError`` if it is not usable."""
    return CollectorSpec.for_class(cls, "class", source)


class Registry(Mapping[str, type[CollectorBase]]):
    """What discovery found: a read-only mapping of collector name to class (the winners).

    ``specs`` has the winning spec per name, ``discovered`` every collector in discovery order
    (overridden ones included), ``problems`` the plugins that could not be used.
    """

    def __init__(self, discovered: Iterable[CollectorSpec], problems: Iterable[LoadProblem] = ()) -> None:
        self.discovered: list[CollectorSpec] = []
        self.specs: dict[str, CollectorSpec] = {}
        self._qualified: dict[str, CollectorSpec] = {}
        self.problems: list[LoadProblem] = list(problems)
        for found in discovered:
            spec, previous = found, self.specs.get(found.name)
            if previous is not None:
                spec = spec._replace(overrides=(*previous.overrides, previous.source))
            self.specs[spec.name] = spec
            self.discovered.append(spec)
            for qualified in spec.qualified_names:
                self._qualified[qualified] = spec
            if previous is not None:
                logger.warning(
                    "collector %r from %s overrides the one from %s (still reachable as %s)",
                    spec.name,
                    spec.source,
                    previous.source,
                    self.reachable_as(previous),
                )

    def __getitem__(self, name: str) -> type[CollectorBase]:
        return self.resolve(name).cls

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.specs or name in self._qualified)

    def available(self) -> list[str]:
        """Names that resolve: every winner's name, and the namespaced name of every loser."""
        names = set(self.specs)
        for spec in self.discovered:
            if self.specs[spec.name] is not spec:
                names.add(self.reachable_as(spec))
        return sorted(names)

    def reachable_as(self, spec: CollectorSpec) -> str:
        """The shortest name that selects ``spec``: its name, its namespace, or its exact source."""
        for name in (spec.name, *spec.qualified_names):
            if self.resolve_or_none(name) is spec:
                return name
        return spec.qualified_names[1]

    def resolve_or_none(self, name: str) -> CollectorSpec | None:
        return self._qualified.get(name) if "::" in name else self.specs.get(name)

    def resolve(self, name: str) -> CollectorSpec:
        """The spec for a name or a namespaced name; ``UnknownCollectorError`` lists what exists."""
        spec = self.resolve_or_none(name)
        if spec is None:
            raise UnknownCollectorError(name, self.available())
        return spec

    def select(self, include: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> dict[str, CollectorSpec]:
        """Resolve a selection into ``{key: spec}`` in order, without duplicates.

        ``include=None`` selects every winner. The key is the name as given. ``exclude`` drops
        collectors by name or namespaced name. Unknown names in either raise ``UnknownCollectorError``.
        """
        drop = {(spec.source, spec.name) for spec in map(self.resolve, exclude)}
        drop_names = {name for name in exclude if "::" not in name}
        chosen = [(n, self.resolve(n)) for n in include] if include is not None else self.specs.items()
        selected: dict[str, CollectorSpec] = {}
        seen: set[tuple[str, str]] = set()
        for key, spec in chosen:
            ident = (spec.source, spec.name)
            if ident in seen or ident in drop or spec.name in drop_names:
                continue
            seen.add(ident)
            selected[key] = spec
        return selected


# --- find and load -------------------------------------------------------------------------------

_MAX_VERSION = 100


def _qualname(cls: type) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')}"


def _shown(value: object) -> str:
    """A short, safe rendering of a plugin's attribute value for a message (never calls its __str__)."""
    if type(value) in (str, int, float, bool) or value is None:
        return one_line(repr(value), 60)
    return f"a {type(value).__name__}"


def _read_meta(cls: type) -> CollectorMeta | str:
    """The class's VERSION, COLLECTOR_TYPE and TIMEOUT, checked; or why they cannot be used.

    Only values of the built-in types are accepted, so reading them never runs a plugin's code
    (a ``__str__`` that blocks, say) in the harvest.
    """
    version = getattr(cls, "VERSION", "0.0.0")
    if type(version) in (int, float):
        version = repr(version)
    if type(version) is not str or not version or len(version) > _MAX_VERSION or not version.isprintable():
        return f"has an invalid VERSION {_shown(version)} (a printable string of at most {_MAX_VERSION} characters)"
    kind = getattr(cls, "COLLECTOR_TYPE", "generic")
    if type(kind) is not str or not NAME_PATTERN.match(kind):
        return f"has an invalid COLLECTOR_TYPE {_shown(kind)} (lowercase letters, digits, '-', '_' or '.')"
    timeout = getattr(cls, "TIMEOUT", DEFAULT_TIMEOUT)
    if type(timeout) not in (int, float) or not 0 < timeout <= MAX_TIMEOUT:  # NaN fails the comparison too
        return f"has an invalid TIMEOUT {_shown(timeout)} (seconds, greater than 0 and at most {MAX_TIMEOUT:g})"
    return CollectorMeta(version, kind, float(timeout))


def _spec(obj: type, namespace: str, source: str) -> CollectorSpec | str:
    """A spec for a class that looks like a collector, or why it cannot be one."""
    try:
        name = getattr(obj, "NAME", None)
        if type(name) is not str or not NAME_PATTERN.match(name):
            return f"has an invalid NAME {_shown(name)} (lowercase letters, digits, '-', '_' or '.')"
        abstract = getattr(obj, "__abstractmethods__", None)
        if abstract:
            return f"does not implement {', '.join(sorted(map(str, abstract)))}()"
        meta = _read_meta(obj)
    except Exception as err:  # noqa: BLE001 - a class attribute that raises is the plugin's problem
        return f"cannot be read: {describe_error(err)}"
    if isinstance(meta, str):
        return meta
    assert issubclass(obj, CollectorBase)
    return CollectorSpec(name, obj, namespace, source, meta=meta)


def _classify_module(module: types.ModuleType, namespace: str, source: str) -> Iterator[CollectorSpec | LoadProblem]:
    """The collectors a module defines itself, or a package in its own submodules (not those it imports)."""
    own = module.__name__
    inside = own + "." if hasattr(module, "__path__") else None
    for obj in list(vars(module).values()):
        if not (isinstance(obj, type) and issubclass(obj, CollectorBase)):
            continue
        if obj.__module__ != own and not (inside and obj.__module__.startswith(inside)):
            continue
        try:
            if "NAME" not in vars(obj) and not getattr(obj, "NAME", None):
                continue  # an intermediate base class of the plugin's own
        except Exception as err:  # noqa: BLE001
            yield _reject(source, f"class {obj.__qualname__} cannot be read: {describe_error(err)}")
            continue
        found = _spec(obj, namespace, source)
        yield _reject(source, f"class {obj.__qualname__} {found}") if isinstance(found, str) else found


def _reject(where: str, message: str) -> LoadProblem:
    logger.warning("skipping collector plugin %s: %s", where, message)
    return LoadProblem(where, message)


def _problem(where: str, err: BaseException) -> LoadProblem:
    """Record a plugin whose import raised anything, KeyboardInterrupt and SystemExit included.

    One warning line, the traceback only at DEBUG; the other plugins still load.
    """
    logger.debug("traceback of %s", where, exc_info=err)
    return _reject(where, describe_error(err))


def _canonical(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)


def _find_entry_points(builtin_distribution: str | None, progress: Progress) -> Iterator[CollectorSpec | LoadProblem]:
    """Entry points of the group: those of ``builtin_distribution`` first (as ``builtin``), then the others."""
    from importlib.metadata import entry_points

    builtin = _canonical(builtin_distribution) if builtin_distribution else None
    # A distribution's name is parsed from its METADATA file on every access: read it once per entry point.
    named = [
        (str(ep.dist.name) if ep.dist is not None else "entry-point", ep)
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]

    def order(item: tuple[str, Any]) -> tuple[bool, str, str]:
        return (_canonical(item[0]) != builtin, _canonical(item[0]), str(item[1].name))

    seen: set[tuple[str, str, str]] = set()
    for dist, ep in sorted(named, key=order):
        if (_canonical(dist), ep.name, ep.value) in seen:  # the same distribution found twice on sys.path
            continue
        seen.add((_canonical(dist), ep.name, ep.value))
        if builtin is not None and _canonical(dist) == builtin:
            namespace, where = "builtin", f"builtin:{ep.value}"
        else:
            namespace, where = dist, f"entry-point:{dist}[{ep.name}]"
        if progress.passes_over(where):
            continue
        if where in progress.skip:
            yield _reject(where, progress.skip[where])
            continue
        if progress.before_import is not None:
            progress.before_import(where)
        try:
            target = ep.load()
        except BaseException as err:  # noqa: BLE001 - one broken entry point never stops discovery
            yield _problem(where if namespace == "builtin" else f"{where} ({ep.value})", err)
            continue
        if isinstance(target, types.ModuleType):
            yield from _classify_module(target, namespace, where)
        elif isinstance(target, type) and issubclass(target, CollectorBase):
            found = _spec(target, namespace, where)
            yield _reject(where, f"{ep.value} {found}") if isinstance(found, str) else found
        else:
            yield _reject(where, f"{ep.value} is neither a collector class nor a module")


class _SafePluginFinder:
    """Refuses to import any module under the plugin root from a file other users can write.

    Plugin files are checked before they are imported; this also covers what they import relatively:
    ``_helpers`` beside them and the submodules of plugin packages. (A meta path finder needs only
    ``find_spec``; not subclassing ``importlib.abc.MetaPathFinder`` spares every command the import
    of ``importlib.abc``, which brings ``importlib.resources`` with it.)
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PLUGIN_ROOT + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        for candidate in (spec.origin, *(spec.submodule_search_locations or ())):
            if candidate and os.path.exists(candidate):
                reason = unsafe_reason(Path(candidate))
                if reason:
                    raise ImportError(f"refused to import {candidate}: it {reason}", name=fullname, path=candidate)
        return spec


def _plugin_package(directory: Path) -> str:
    """A fresh synthetic package whose ``__path__`` is ``directory`` (so relative imports work)."""
    if not any(isinstance(finder, _SafePluginFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SafePluginFinder())
    if _PLUGIN_ROOT not in sys.modules:
        root = types.ModuleType(_PLUGIN_ROOT, "Synthetic parent of filesystem collector plugins.")
        root.__path__ = []
        sys.modules[_PLUGIN_ROOT] = root
    import hashlib  # here, not at the top: it loads OpenSSL, which commands without plugin paths skip

    digest = hashlib.sha1(str(directory).encode(), usedforsecurity=False).hexdigest()[:12]
    name = f"{_PLUGIN_ROOT}.d{digest}"
    for stale in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[stale]  # a new load imports the current code (e.g. after a charm upgrade)
    package = types.ModuleType(name, f"Collector plugins from {directory}")
    package.__path__ = [str(directory)]
    package.__package__ = name
    sys.modules[name] = package
    return name


def _import_plugin(package: str, entry: Path) -> types.ModuleType:
    stem = entry.stem if entry.is_file() else entry.name
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    name = f"{package}.{safe}"
    if entry.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, entry / "__init__.py", submodule_search_locations=[str(entry)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, entry)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {entry}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def plugin_files(directory: Path) -> list[Path]:
    """The plugin modules of a directory in name order: ``*.py`` files and packages, no ``_`` helpers."""
    found = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(("_", ".")):
            continue
        if (entry.suffix == ".py" and entry.is_file()) or (entry.is_dir() and (entry / "__init__.py").is_file()):
            found.append(entry)
    return found


def check_plugin_dir(path: str | os.PathLike[str]) -> Path:
    """Return the plugin directory as an absolute path, or raise ``PluginPathError`` saying why not."""
    directory = Path(path).expanduser()
    if not directory.exists():
        raise PluginPathError(str(path), "does not exist")
    if not directory.is_dir():
        raise PluginPathError(str(path), "is not a directory")
    reason = unsafe_reason(directory)
    if reason:
        raise PluginPathError(str(path), f"refused: {reason}")
    return directory.resolve()


class Progress(NamedTuple):
    """How a caller follows discovery.

    ``before_import(where)`` is called before each plugin is imported, and the plugins in ``skip``
    (by ``where``, with the reason to report) are not imported at all: a worker uses both to name,
    and then leave out, a plugin whose import hangs or crashes the interpreter.
    """

    before_import: Callable[[str], None] | None = None
    skip: Mapping[str, str] = {}
    #: When set, only these sources (by ``where``) are imported; the rest are passed over silently
    #: (a worker of its own for one quarantined collector imports only that collector's plugin).
    only: frozenset[str] | None = None

    def passes_over(self, where: str) -> bool:
        """Whether ``where`` is left alone without a word (not in ``only``)."""
        return self.only is not None and where not in self.only


def _find_in_dir(directory: Path, progress: Progress) -> Iterator[CollectorSpec | LoadProblem]:
    package = _plugin_package(directory)
    for entry in plugin_files(directory):
        where = f"path:{entry}"
        if progress.passes_over(where):
            continue
        if where in progress.skip:
            yield _reject(where, progress.skip[where])
            continue
        targets = [entry, entry / "__init__.py"] if entry.is_dir() else [entry]
        reasons = [r for r in map(unsafe_reason, targets) if r]
        if reasons:
            yield _reject(where, f"refused: {reasons[0]}")
            continue
        if progress.before_import is not None:
            progress.before_import(where)
        try:
            module = _import_plugin(package, entry)
        except BaseException as err:  # noqa: BLE001
            yield _problem(where, err)
            continue
        yield from _classify_module(module, "plugins", where)


def env_plugin_paths(environ: Mapping[str, str] | None = None) -> list[str]:
    """The plugin paths named by ``HARVESTER_COLLECTOR_PATHS`` (``os.pathsep``-separated)."""
    raw = (os.environ if environ is None else environ).get(PATHS_ENV, "")
    return [p.strip() for p in raw.split(os.pathsep) if p.strip()]


def load_collectors(
    paths: Iterable[str | os.PathLike[str]] = (),
    *,
    env: bool = True,
    entry_points: bool = True,
    builtin_distribution: str | None = None,
) -> Registry:
    """Discover collectors: built-ins, then entry points, then plugin paths.

    Args:
        paths: plugin directories, after those of ``HARVESTER_COLLECTOR_PATHS``, so that on a name
            collision an explicit path beats the environment.
        env: read ``HARVESTER_COLLECTOR_PATHS``.
        entry_points: discover the entry points of group ``dwellir_harvester.collectors``.
        builtin_distribution: the distribution whose entry points are the built-ins: discovered
            first and shown as ``builtin`` (the runner passes its own name). None: no built-ins.

    Returns:
        The registry of what was found; plugins that failed to import, or are unsafe, are logged,
        recorded in ``problems`` and skipped.

    Raises:
        PluginPathError: a path does not exist, is not a directory, or is writable by other users.
    """
    directories = [check_plugin_dir(p) for p in [*(env_plugin_paths() if env else []), *paths]]
    return Registry(*discover_specs(directories, entry_points=entry_points, builtin_distribution=builtin_distribution))


def discover_specs(
    directories: Iterable[Path],
    *,
    entry_points: bool = True,
    builtin_distribution: str | None = None,
    progress: Progress | None = None,
) -> tuple[list[CollectorSpec], list[LoadProblem]]:
    """Everything discovery finds, in order (overridden collectors included), and the problems.

    ``directories`` must have passed ``check_plugin_dir``. ``load_collectors`` merges the result
    into a ``Registry``; a worker sends it to its parent, which merges the specs of every worker.
    """
    progress = progress or Progress()
    found: list[CollectorSpec | LoadProblem] = []
    if entry_points:
        found.extend(_find_entry_points(builtin_distribution, progress))
    seen: set[Path] = set()
    for directory in directories:
        if directory not in seen:
            seen.add(directory)
            found.extend(_find_in_dir(directory, progress))
    specs = [item for item in found if isinstance(item, CollectorSpec)]
    problems = [item for item in found if isinstance(item, LoadProblem)]
    return specs, problems

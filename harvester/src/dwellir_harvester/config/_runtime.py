"""What settings resolve to: the discovered collectors, their worker sources, and a checked selection."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dwellir_harvester.lib import (
    CollectorOptionError,
    PluginPathError,
    Problem,
    Registry,
    UnknownCollectorError,
    check_plugin_dir,
    load_collectors,
)
from dwellir_harvester.lib.limits import one_line

from ._errors import ConfigError

if TYPE_CHECKING:  # imported where workers are used: `isolation: thread` never needs them
    from dwellir_harvester.lib.isolation import WorkerPool, WorkerSource
from ._settings import PluginPath, Settings, load_settings

#: This distribution: its entry points are the built-in collectors.
DISTRIBUTION = "dwellir-harvester"
#: The built-in collector whose data the document's top-level ``host`` repeats.
HOST_COLLECTOR = "host"
#: The worker source of the built-ins, the entry points, and every plugin path without a ``python``.
MAIN_SOURCE = "main"


class _LeaveOut(Exception):  # noqa: N818 - not an error: a drop-in to leave out
    def __init__(self, file: str, problem: str) -> None:
        super().__init__(problem)
        self.file, self.problem = file, problem


class Configured(NamedTuple):
    """Settings checked against what discovery found: what a harvest needs.

    ``problems`` lists what was left out (drop-ins, plugins, workers), for the document's
    ``harvester.problems``, ``/metrics``, ``list`` and the log.
    """

    settings: Settings
    registry: Registry
    names: list[str]
    problems: list[Problem]


def worker_sources(settings: Settings) -> list[WorkerSource]:
    """The worker sources of the settings: ``main``, then one per file that names a ``python``."""
    from dwellir_harvester.lib.isolation import WorkerSource

    main = [p.path for p in settings.collector_paths if p.python is None]
    sources = [WorkerSource(MAIN_SOURCE, tuple(main), entry_points=True, builtin_distribution=DISTRIBUTION)]
    own: dict[str, list[PluginPath]] = {}
    for path in settings.collector_paths:
        if path.python is not None:
            own.setdefault(path.origin, []).append(path)
    for origin, paths in own.items():
        first = paths[0]
        sources.append(
            WorkerSource(
                origin,
                tuple(p.path for p in paths),
                entry_points=False,
                python=first.python,
                python_path=first.python_path,
            )
        )
    return sources


def _check_paths(settings: Settings) -> None:
    """Check every plugin path here (cheap, imports nothing): a bad one leaves its drop-in out, else is an error."""
    for path in settings.collector_paths:
        try:
            check_plugin_dir(path.path)
        except PluginPathError as err:
            if settings.is_dropin(path.origin):
                raise _LeaveOut(path.origin, f"left out: collector path {err.path} {err.reason}") from err
            raise ConfigError(f"{err.path} {err.reason}", file=path.origin) from err
        if path.python is not None and settings.isolation == "thread":
            raise _LeaveOut(
                path.origin, "left out: it names a python for its collectors, which needs isolation: process"
            )


def discover(settings: Settings, pool: WorkerPool | None = None) -> Registry:
    """Built-ins, entry points, then the settings' plugin paths (files, environment, flags).

    With a ``pool`` (``isolation: process``) discovery runs in workers, one per source; without, in
    this process. A plugin path that does not exist or is unsafe is a ``ConfigError`` naming where it
    was given.
    """
    try:
        _check_paths(settings)
    except _LeaveOut as bad:
        raise ConfigError(bad.problem, file=bad.file) from None
    return _discover(settings, pool)


def _discover(settings: Settings, pool: WorkerPool | None) -> Registry:
    if pool is not None:
        return pool.discover(worker_sources(settings))
    paths = [p.path for p in settings.collector_paths]
    return load_collectors(paths, env=False, builtin_distribution=DISTRIBUTION)


def _dropin_problems(settings: Settings, registry: Registry) -> dict[str, str]:
    """The drop-ins to leave out: each names (or excludes) an unknown collector or option, or its worker fails."""
    bad: dict[str, str] = {}
    for problem in registry.problems:
        if settings.is_dropin(problem.where):
            bad.setdefault(problem.where, f"left out: {problem.message}")
    for name in settings.collectors:
        origin = settings.collector_origins.get(name)
        if origin is not None and settings.is_dropin(origin) and name not in registry:
            bad.setdefault(origin, f"left out: {UnknownCollectorError(name, registry.available())}")
    for name, origin in settings.exclude_origins.items():
        if settings.is_dropin(origin) and name not in registry:
            bad.setdefault(origin, f"left out: exclude: {UnknownCollectorError(name, registry.available())}")
    for name, options in settings.collector_options.items():
        origin = settings.option_origins.get(name)
        if origin is None or not settings.is_dropin(origin):
            continue
        try:
            registry.resolve(name).check_options(options)
        except (UnknownCollectorError, CollectorOptionError) as err:
            bad.setdefault(origin, f"left out: {err}")
    return {file: one_line(problem) for file, problem in bad.items()}


def _emptying_dropin(settings: Settings, registry: Registry, names: Sequence[str] | None) -> str | None:
    """The drop-in to leave out when the excludes leave nothing to collect: the last one that excludes.

    Without it, one drop-in's exclude could stop the whole harvest ("nothing to collect").
    """
    try:
        if registry.select(list(names) if names else settings.collectors, settings.exclude):
            return None
    except UnknownCollectorError:  # check_selection says so, naming it
        return None
    excluding = {origin for origin in settings.exclude_origins.values() if settings.is_dropin(origin)}
    return max(excluding, key=settings.files.index, default=None)


def configure(
    flags: Mapping[str, Any],
    names: Sequence[str] | None = None,
    *,
    pool: WorkerPool | None = None,
    environ: Mapping[str, str] | None = None,
    select: bool = True,
    settings: Settings | None = None,
) -> Configured:
    """Load the settings, discover, and check the selection, leaving out the drop-ins that do not fit.

    A drop-in that does not parse, names a plugin path that cannot be used, an unknown collector
    or option, or whose worker cannot start is left out whole (the settings are loaded again
    without it) and reported; everything else runs. The main config file, the environment and
    the flags stay strict. With ``select=False`` (``list``) the selection is not checked and
    ``names`` is empty. ``settings`` already loaded from the same ``flags`` are used as they are
    until a drop-in has to be left out.

    Raises:
        ConfigError: a problem in the main file, the environment or the flags.
    """
    leave_out: dict[str, str] = {}
    while True:
        if settings is None or leave_out:
            settings = load_settings(flags, environ, leave_out=leave_out)
        try:
            _check_paths(settings)
        except _LeaveOut as bad:
            leave_out[bad.file] = bad.problem
            continue
        registry = _discover(settings, pool)
        bad_dropins = _dropin_problems(settings, registry)
        if bad_dropins:
            leave_out.update(bad_dropins)
            continue
        emptying = _emptying_dropin(settings, registry, names) if select else None
        if emptying is not None:
            leave_out[emptying] = "left out: its exclude leaves nothing to collect"
            continue
        selected = check_selection(settings, registry, names) if select else []
        problems: list[Problem] = [{"where": p.where, "problem": p.problem} for p in settings.problems]
        problems += [{"where": p.where, "problem": p.message} for p in registry.problems]
        return Configured(settings, registry, selected, problems)


def check_selection(settings: Settings, registry: Registry, names: Sequence[str] | None = None) -> list[str]:
    """The collector names to harvest, after checking every name and every option in the settings.

    Raises ``ConfigError`` for an unknown name (listing what exists), options for a collector that
    does not exist, or options a constructor does not take (naming the file that set them), and for
    a selection that excludes everything.
    """
    wanted = list(names) if names else settings.collectors
    try:
        selected = registry.select(wanted, settings.exclude)
    except UnknownCollectorError as err:
        raise ConfigError(str(err)) from err
    for name, options in settings.collector_options.items():
        origin = settings.option_origins.get(name)
        try:
            registry.resolve(name).check_options(options)
        except (UnknownCollectorError, CollectorOptionError) as err:
            raise ConfigError(str(err), file=origin, key=f"collector_options.{name}") from err
    if not selected:
        raise ConfigError(f"nothing to collect: {', '.join(wanted)} all excluded by {', '.join(settings.exclude)}")
    return list(selected)


#: Beside the daemon's output file: the collectors it quarantined (they killed a worker), for ``list``.
QUARANTINE_FILE = "quarantined.json"


def quarantine_path(settings: Settings) -> str | None:
    """Where the daemon records its quarantined collectors: beside its output file (None: no output)."""
    from ._settings import DEFAULT_OUTPUT

    output = DEFAULT_OUTPUT if settings.output is None else settings.output
    return os.path.join(os.path.dirname(os.path.abspath(output)), QUARANTINE_FILE) if output else None


def read_quarantine(settings: Settings) -> set[tuple[str, str]]:
    """The collectors (source, name) the daemon last recorded as quarantined; none when it recorded none."""
    import json

    from dwellir_harvester.lib.files import read_bytes

    path = quarantine_path(settings)
    try:
        raw = read_bytes(path, 1024 * 1024) if path else None
        entries = json.loads(raw) if raw else []
        return {(str(e["source"]), str(e["collector"])) for e in entries}
    except (OSError, ValueError, TypeError, KeyError):
        return set()


def harvest_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``harvest()`` that come from the settings."""
    return {
        "exclude": settings.exclude,
        "options": settings.collector_options,
        "timeout": settings.timeout,
        "validate": settings.validate,
        "host_collector": HOST_COLLECTOR,
    }


def output_dir_problem(path: str) -> str | None:
    """Why the file ``path`` could not be written, or None.

    Checked before any harvest: its directory is missing or not writable, or ``path`` is a
    directory or some other thing that is not a regular file (a device, a FIFO), which an atomic
    write would replace.

    Args:
        path: the output file.

    Returns:
        The problem in words that follow the path, or None.
    """
    if os.path.isdir(path):
        return f"{path} is a directory, not a file"
    if os.path.exists(path) and not os.path.isfile(path):
        return f"{path} is not a regular file"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"directory {directory} does not exist"
    if not os.access(directory, os.W_OK):
        return f"directory {directory} is not writable"
    return None

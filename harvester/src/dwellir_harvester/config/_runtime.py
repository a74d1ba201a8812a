"""What settings resolve to: the discovered collectors and a checked harvest plan."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from dwellir_harvester.lib import (
    CollectorOptionError,
    PluginPathError,
    Registry,
    UnknownCollectorError,
    load_collectors,
)

from ._errors import ConfigError
from ._settings import Settings

#: This distribution: its entry points are the built-in collectors.
DISTRIBUTION = "dwellir-harvester"
#: The built-in collector whose data the document's top-level ``host`` repeats.
HOST_COLLECTOR = "host"


def discover(settings: Settings) -> Registry:
    """Built-ins, entry points, then the settings' plugin paths (files, environment, flags).

    A plugin path that does not exist or is unsafe is a ``ConfigError`` naming where it was given.
    """
    paths = settings.collector_paths
    try:
        return load_collectors([p.path for p in paths], env=False, builtin_distribution=DISTRIBUTION)
    except PluginPathError as err:
        origin = next((p.origin for p in paths if p.path == err.path), "collector path")
        raise ConfigError(f"{err.path} {err.reason}", file=origin) from err


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

"""Settings of the runner: config files, environment and flags, merged into one ``Settings``.

Where a value comes from, strongest first:

1. command-line flags;
2. the environment: ``HARVESTER_CONFIG`` (another main file), ``HARVESTER_COLLECTOR_PATHS``,
   ``DAEMON_AUTH_TOKENS`` (comma-separated), ``DAEMON_AUTH_TOKEN_FILE``;
3. config files: the main file (``/etc/dwellir-harvester/config.yaml``, or ``--config`` /
   ``HARVESTER_CONFIG``), then the drop-ins ``config.d/*.yaml`` beside it in name order. Lists are
   unioned, ``collector_options`` merge per option, any other value: the last file wins;
4. defaults.

``collectors`` from files are added to the default set (``host``); ``exclude`` drops any of them.
Plugin paths keep all layers, in the order files, environment, flags, so on a name collision a flag
beats the environment and the environment beats files. The accepted keys and their types are in the
JSON Schema ``config_schema_path()``; an unknown key or a wrong type is a ``ConfigError`` naming the
file and the key.

The public API:

Loading
    ``load_settings(flags, environ)`` returns ``Settings`` (with ``PluginPath`` records for plugin
    directories and where each was named); ``ConfigError`` names the file and key of a bad value.
    ``config_schema_path()`` is the JSON Schema of one config file; ``DEFAULT_CONFIG`` and
    ``DEFAULT_OUTPUT`` and ``DEFAULT_SPOOL_DIR`` are the default paths, ``SinkSpec`` one
    configured sink (``Settings.sinks``), ``ENV_CONFIG`` the variable naming another main
    file; ``__version__`` is the runner's version.

Reading files strictly (for the daemon's token file too)
    ``read_config_file(path)`` reads and checks one config file; ``read_bounded(path)`` reads a
    regular file of bounded size (never a FIFO or a device); ``parse_yaml(text, file)`` parses YAML
    within bounds (aliases, depth, size, duplicate and non-string keys). Each raises
    ``ConfigError`` in one line naming the file.

Resolving
    ``configure(flags, names, pool=)`` loads the settings, discovers (in workers of a
    ``WorkerPool``, or in this process) and checks the selection, leaving out the drop-ins that do
    not fit, and returns ``Configured`` (with the ``problems`` to report); ``worker_sources(settings)``
    are the workers discovery needs. ``discover(settings)`` finds the collectors;
    ``check_selection(settings, registry, names)`` checks the selection and every option;
    ``harvest_options(settings)`` gives ``harvest()``'s keyword arguments; ``output_dir_problem(path)``
    says why an output file could not be written. ``quarantine_path(settings)`` is where the daemon
    records the collectors that killed a worker (beside its output file); ``read_quarantine``
    reads it back for ``list``.
"""

from typing import TYPE_CHECKING, Any

from ._errors import ConfigError
from ._files import DEFAULT_CONFIG, ENV_CONFIG, config_schema_path, read_config_file
from ._runtime import (
    Configured,
    check_selection,
    configure,
    discover,
    harvest_options,
    output_dir_problem,
    quarantine_path,
    read_quarantine,
    worker_sources,
)
from ._settings import DEFAULT_OUTPUT, DEFAULT_SPOOL_DIR, PluginPath, Settings, SinkSpec, load_settings
from ._version import __version__

if TYPE_CHECKING:  # imported when first used: PyYAML costs start-up time that `collect` without config does not need
    from ._yaml import parse_yaml, read_bounded

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_OUTPUT",
    "DEFAULT_SPOOL_DIR",
    "ENV_CONFIG",
    "ConfigError",
    "Configured",
    "PluginPath",
    "Settings",
    "SinkSpec",
    "__version__",
    "check_selection",
    "config_schema_path",
    "configure",
    "discover",
    "harvest_options",
    "load_settings",
    "output_dir_problem",
    "parse_yaml",
    "quarantine_path",
    "read_bounded",
    "read_config_file",
    "read_quarantine",
    "worker_sources",
]


def __getattr__(name: str) -> Any:
    """``parse_yaml`` and ``read_bounded``, imported on first use."""
    if name in ("parse_yaml", "read_bounded"):
        from . import _yaml

        return getattr(_yaml, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

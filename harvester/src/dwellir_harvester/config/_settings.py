"""``Settings`` and ``load_settings``: defaults, config files, environment and flags, merged."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from dwellir_harvester.lib import PATHS_ENV, env_plugin_paths
from dwellir_harvester.lib.limits import one_line
from dwellir_harvester.lib.redact import redact_text, redact_url, redact_values

from ._errors import ConfigError
from ._files import config_files, main_config_file, read_config_file

DEFAULT_OUTPUT = "/var/lib/dwellir-harvester/harvested-data.json"
DEFAULT_SPOOL_DIR = "/var/lib/dwellir-harvester/spool"
DEFAULTS: Mapping[str, Any] = {
    "collectors": ("host",),
    "interval": 300.0,
    "host": "127.0.0.1",
    "port": 18080,
    "validate": True,
    "isolation": "process",
    "worker_memory_mb": 1024,
    "spool_max_documents": 1000,
    "spool_max_bytes": 100 * 1024 * 1024,
}
_LIST_KEYS = ("collectors", "exclude", "auth_tokens")
ENV_PATHS = PATHS_ENV
ENV_TOKENS = "DAEMON_AUTH_TOKENS"
ENV_TOKEN_FILE = "DAEMON_AUTH_TOKEN_FILE"


class PluginPath(NamedTuple):
    """A plugin directory, the place that named it (a file, a variable, a flag), and its interpreter.

    ``python`` and ``python_path`` come from the file that named the directory: its collectors are
    discovered and run only in a worker started that way (None: the harvester's own interpreter).
    """

    path: str
    origin: str
    python: str | None = None
    python_path: tuple[str, ...] = ()


class SinkSpec(NamedTuple):
    """One configured sink: its unique name, its type, its settings (paths resolved), and the file that named it."""

    name: str
    type: str
    settings: dict[str, Any]
    origin: str


class SettingsProblem(NamedTuple):
    """A config file (a drop-in) left out, and why, in one line."""

    where: str
    problem: str


class Settings:
    """The effective settings, with where the non-obvious ones came from."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.collectors: list[str] = list(DEFAULTS["collectors"])
        self.exclude: list[str] = []
        self.collector_paths: list[PluginPath] = []
        self.collector_options: dict[str, dict[str, Any]] = {}
        self.option_origins: dict[str, str] = {}
        self.timeout: float | None = None
        self.interval: float = DEFAULTS["interval"]
        self.host: str = DEFAULTS["host"]
        self.port: int = DEFAULTS["port"]
        self.output: str | None = None
        self.validate: bool = DEFAULTS["validate"]
        self.auth_tokens: list[str] = []
        self.auth_token_file: str | None = None
        self.auth: str | None = None  # "required" or "optional"; the daemon honours "optional" from the main file only
        self.log_level: str | None = None
        self.isolation: str = DEFAULTS["isolation"]
        self.worker_memory_mb: int = DEFAULTS["worker_memory_mb"]
        #: Where documents are sent (the daemon), in the order the files named them.
        self.sinks: list[SinkSpec] = []
        self.spool_dir: str = DEFAULT_SPOOL_DIR
        self.spool_max_documents: int = DEFAULTS["spool_max_documents"]
        self.spool_max_bytes: int = DEFAULTS["spool_max_bytes"]
        #: Where each collector name of the files came from (the first file that listed it).
        self.collector_origins: dict[str, str] = {}
        #: Where each excluded name of the files came from (the first file that excluded it).
        self.exclude_origins: dict[str, str] = {}
        #: Drop-ins left out, and why: the rest of the config still applies.
        self.problems: list[SettingsProblem] = []
        #: The main config file, when there is one (it stays strict: a problem in it is an error).
        self.main_file: str | None = None

    def is_dropin(self, origin: str) -> bool:
        """Whether ``origin`` (where a value came from) is a drop-in, which may be left out alone."""
        return origin in self.files and origin != self.main_file

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data with their secrets hidden, for ``--check-config`` and debugging.

        Tokens are masked; collector options go through ``lib.redact.redact_values`` (a sensitive
        option's value, a URL's credentials, key material are ``<redacted>``); any other string
        loses the credentials of a URL it holds.
        """
        hidden = ("option_origins", "collector_origins", "exclude_origins", "problems", "main_file")
        data = {k: _without_credentials(v) for k, v in vars(self).items() if k not in hidden}
        data["collector_paths"] = [redact_url(p.path) for p in self.collector_paths]
        data["collector_options"] = redact_values(self.collector_options)
        data["auth_tokens"] = ["***"] * len(self.auth_tokens)
        data["sinks"] = [{"name": s.name, **redact_values(s.settings), "origin": s.origin} for s in self.sinks]
        return data


def _without_credentials(value: Any) -> Any:
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, list):
        return [_without_credentials(item) for item in value]
    return value


def _union(into: list[str], items: Iterable[str]) -> None:
    into.extend(item for item in items if item not in into)


def _merge_file(settings: Settings, path: Path, data: Mapping[str, Any], file_collectors: list[str]) -> None:
    python = os.path.normpath(path.parent / os.path.expanduser(data["python"])) if "python" in data else None
    python_path = tuple(os.path.normpath(path.parent / os.path.expanduser(p)) for p in data.get("python_path", ()))
    for key, value in data.items():
        if key == "collectors":
            _union(file_collectors, value)
            for name in value:
                settings.collector_origins.setdefault(name, str(path))
        elif key in _LIST_KEYS:
            _union(getattr(settings, key), value)
            if key == "exclude":
                for name in value:
                    settings.exclude_origins.setdefault(name, str(path))
        elif key in ("python", "python_path"):
            continue  # they belong to this file's collector_paths
        elif key == "collector_paths":
            for item in value:
                resolved = os.path.normpath(path.parent / os.path.expanduser(item))
                settings.collector_paths.append(PluginPath(resolved, str(path), python, python_path))
        elif key == "collector_options":
            for name, options in value.items():
                settings.collector_options.setdefault(name, {}).update(options)
                settings.option_origins[name] = str(path)
        elif key == "auth_token_file":
            settings.auth_token_file = os.path.normpath(path.parent / value)
        elif key == "spool_dir":
            settings.spool_dir = os.path.normpath(path.parent / os.path.expanduser(value))
        elif key == "sinks":
            for item in value:
                sink = dict(item)
                for path_key in ("directory", "credentials_file"):
                    if path_key in sink:
                        sink[path_key] = os.path.normpath(path.parent / os.path.expanduser(sink[path_key]))
                if not any(s.settings == sink for s in settings.sinks):  # the same sink in two files is one sink
                    settings.sinks.append(SinkSpec(str(sink.get("name", "")), str(sink["type"]), sink, str(path)))
        else:
            setattr(settings, key, value)
    if data.get("auth_tokens") and path.stat().st_mode & stat.S_IROTH:
        import logging

        logging.getLogger(__name__).warning("%s holds auth_tokens but is readable by every user", path)


def _name_sinks(settings: Settings) -> None:
    """Name each sink (its type, or ``<type>-<n>`` when several share it); a drop-in's duplicate is left out."""
    by_type: dict[str, int] = {}
    for sink in settings.sinks:
        if not sink.name:
            by_type[sink.type] = by_type.get(sink.type, 0) + 1
    seen: dict[str, str] = {}
    counts: dict[str, int] = {}
    named: list[SinkSpec] = []
    for sink in settings.sinks:
        counts[sink.type] = counts.get(sink.type, 0) + (0 if sink.name else 1)
        name = sink.name or (sink.type if by_type[sink.type] == 1 else f"{sink.type}-{counts[sink.type]}")
        if name in seen:
            problem = f"a sink named {name!r} is already configured in {seen[name]}; name this one differently"
            if settings.is_dropin(sink.origin):
                settings.problems.append(SettingsProblem(sink.origin, f"sink left out: {problem}"))
                continue
            raise ConfigError(problem, file=sink.origin, key="sinks")
        seen[name] = sink.origin
        named.append(sink._replace(name=name))
    settings.sinks = named


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    leave_out: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, config files, environment and flags into ``Settings``.

    The main config file is strict: any problem in it is a ``ConfigError``. A drop-in with a
    problem (it does not parse, a wrong key or type) is left out whole and recorded in
    ``settings.problems``, so one charm's bad drop-in never stops the harvester for the others.

    Args:
        flags: only what was given on the command line, under the config keys (plus ``config``
            for ``--config``).
        environ: the environment (default: ``os.environ``).
        leave_out: drop-ins to leave out, with the reason to report (a caller that found a drop-in
            naming an unknown collector loads the settings again without it).

    Returns:
        The settings.

    Raises:
        ConfigError: naming the file and key of a bad value in the main file, a flag or the environment.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    leave_out = dict(leave_out or {})
    settings = Settings()
    file_collectors: list[str] = []
    main = main_config_file(flags.get("config"), environ)
    for path in config_files(flags.get("config"), environ):
        if str(path) in leave_out:
            settings.problems.append(SettingsProblem(str(path), leave_out[str(path)]))
            continue
        try:
            data = read_config_file(path)
        except ConfigError as err:
            if path == main:
                raise
            settings.problems.append(
                SettingsProblem(str(path), f"left out: {err.message}" + (f" (key {err.key!r})" if err.key else ""))
            )
            continue
        if "withdrawn" in data:  # a charm's drop-in that says why its collectors are not wired in
            if path == main:
                problem = "withdrawn belongs in a drop-in, not the main config"
                raise ConfigError(problem, file=str(path), key="withdrawn")
            reason = one_line(redact_text(str(data["withdrawn"])))
            settings.problems.append(SettingsProblem(str(path), f"withdrawn by its charm: {reason}"))
            continue
        _merge_file(settings, path, data, file_collectors)
        settings.files.append(str(path))
        if path == main:
            settings.main_file = str(path)
    _union(settings.collectors, file_collectors)
    _name_sinks(settings)

    env_paths = env_plugin_paths(environ)
    settings.collector_paths.extend(PluginPath(p, ENV_PATHS) for p in env_paths)
    _union(settings.auth_tokens, (t.strip() for t in environ.get(ENV_TOKENS, "").split(",") if t.strip()))
    if environ.get(ENV_TOKEN_FILE):
        settings.auth_token_file = environ[ENV_TOKEN_FILE]

    if flags.get("collectors"):
        settings.collectors = list(dict.fromkeys(flags["collectors"]))
    _union(settings.exclude, flags.get("exclude", ()))
    _union(settings.auth_tokens, flags.get("auth_tokens", ()))
    settings.collector_paths.extend(PluginPath(p, "--collector-path") for p in flags.get("collector_paths", ()))
    for name, options in flags.get("collector_options", {}).items():
        settings.collector_options.setdefault(name, {}).update(options)
        settings.option_origins[name] = "--option"
    keys = ("timeout", "interval", "host", "port", "output", "validate", "auth_token_file", "log_level", "isolation")
    for key in keys:
        if key in flags:
            setattr(settings, key, flags[key])
    return settings

"""``Settings`` and ``load_settings``: defaults, config files, environment and flags, merged."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from dwellir_harvester.lib import PATHS_ENV, env_plugin_paths
from dwellir_harvester.lib.redact import redact_url, redact_values

from ._files import config_files, read_config_file

DEFAULT_OUTPUT = "/var/lib/dwellir-harvester/harvested-data.json"
DEFAULTS: Mapping[str, Any] = {
    "collectors": ("host",),
    "interval": 300.0,
    "host": "127.0.0.1",
    "port": 18080,
    "validate": True,
}
_LIST_KEYS = ("collectors", "exclude", "auth_tokens")
ENV_PATHS = PATHS_ENV
ENV_TOKENS = "DAEMON_AUTH_TOKENS"
ENV_TOKEN_FILE = "DAEMON_AUTH_TOKEN_FILE"


class PluginPath(NamedTuple):
    """A plugin directory and the place that named it (a file, a variable, a flag)."""

    path: str
    origin: str


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

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data with their secrets hidden, for ``--check-config`` and debugging.

        Tokens are masked; collector options go through ``lib.redact.redact_values`` (a sensitive
        option's value, a URL's credentials, key material are ``<redacted>``); any other string
        loses the credentials of a URL it holds.
        """
        data = {k: _without_credentials(v) for k, v in vars(self).items() if k != "option_origins"}
        data["collector_paths"] = [redact_url(p.path) for p in self.collector_paths]
        data["collector_options"] = redact_values(self.collector_options)
        data["auth_tokens"] = ["***"] * len(self.auth_tokens)
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
    for key, value in data.items():
        if key == "collectors":
            _union(file_collectors, value)
        elif key in _LIST_KEYS:
            _union(getattr(settings, key), value)
        elif key == "collector_paths":
            for item in value:
                resolved = os.path.normpath(path.parent / os.path.expanduser(item))
                settings.collector_paths.append(PluginPath(resolved, f"{path}: collector_paths"))
        elif key == "collector_options":
            for name, options in value.items():
                settings.collector_options.setdefault(name, {}).update(options)
                settings.option_origins[name] = str(path)
        elif key == "auth_token_file":
            settings.auth_token_file = os.path.normpath(path.parent / value)
        else:
            setattr(settings, key, value)
    if data.get("auth_tokens") and path.stat().st_mode & stat.S_IROTH:
        import logging

        logging.getLogger(__name__).warning("%s holds auth_tokens but is readable by every user", path)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, config files, environment and flags into ``Settings``.

    ``flags`` holds only what was given on the command line, under the config keys (plus
    ``config`` for ``--config``). Raises ``ConfigError`` naming the file and key of a bad value.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    settings = Settings()
    file_collectors: list[str] = []
    for path in config_files(flags.get("config"), environ):
        _merge_file(settings, path, read_config_file(path), file_collectors)
        settings.files.append(str(path))
    _union(settings.collectors, file_collectors)

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
    for key in ("timeout", "interval", "host", "port", "output", "validate", "auth_token_file", "log_level"):
        if key in flags:
            setattr(settings, key, flags[key])
    return settings

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
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ._version import __version__

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_OUTPUT",
    "ConfigError",
    "PluginPath",
    "Settings",
    "__version__",
    "check_plan",
    "config_schema_path",
    "discover",
    "harvest_options",
    "load_settings",
    "output_dir_problem",
]

DEFAULT_CONFIG = "/etc/dwellir-harvester/config.yaml"
DEFAULT_OUTPUT = "/var/lib/dwellir-harvester/harvested-data.json"
DEFAULTS: Mapping[str, Any] = {
    "collectors": ("host",),
    "interval": 300.0,
    "host": "127.0.0.1",
    "port": 18080,
    "validate": True,
}
_LIST_KEYS = ("collectors", "exclude", "auth_tokens")
ENV_CONFIG = "HARVESTER_CONFIG"
ENV_PATHS = "HARVESTER_COLLECTOR_PATHS"
ENV_TOKENS = "DAEMON_AUTH_TOKENS"
ENV_TOKEN_FILE = "DAEMON_AUTH_TOKEN_FILE"


class ConfigError(Exception):
    """A config problem, with the file and key it is about when there is one."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file, self.key, self.message = file, key, message
        where = ": ".join(part for part in (file, f"key {key!r}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)


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
        """The settings as plain data (tokens masked), for ``--check-config`` and debugging."""
        data = {k: v for k, v in vars(self).items() if k != "option_origins"}
        data["collector_paths"] = [p.path for p in self.collector_paths]
        data["auth_tokens"] = ["***"] * len(self.auth_tokens)
        return data


def config_schema_path() -> Path:
    """The JSON Schema of a config file (the main file and each drop-in)."""
    return Path(__file__).with_name("config.schema.json")


def _schema() -> Mapping[str, Any]:
    with open(config_schema_path(), encoding="utf-8") as f:
        loaded: Mapping[str, Any] = json.load(f)
    return loaded


_TYPE_NAMES = {
    "array": "a list",
    "object": "a mapping",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
}


def _explain(error: Any, schema: Mapping[str, Any]) -> tuple[str, str]:
    """``(key, message)`` for one jsonschema error, in words an operator reads."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties" and not error.absolute_path:
        known = sorted(schema["properties"])
        extra = sorted(set(error.instance) - set(known))
        name = extra[0] if extra else "?"
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(known)})"
        return name, f"unknown key{hint}"
    got = f"got {json.dumps(error.instance, default=str)}"
    if error.validator == "type":
        expected = _TYPE_NAMES.get(error.validator_value, str(error.validator_value))
        hint = (
            " (YAML reads a bare null as nothing: quote it, 'null', to mean the name)" if error.instance is None else ""
        )
        return path, f"expected {expected}, {got}{hint}"
    if error.validator == "enum":
        values = sorted({str(v).upper() for v in error.validator_value})
        return path, f"expected one of {', '.join(values)}, {got}"
    return path, f"{error.message}"


def _validate_file(data: Any, file: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of keys to values, got {type(data).__name__}", file=file)
    import jsonschema

    schema = _schema()
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        key, message = _explain(errors[0], schema)
        raise ConfigError(message, file=file, key=key or None)
    return data


def read_config_file(path: Path) -> dict[str, Any]:
    """One YAML config file, checked against the config schema."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", file=str(path)) from err
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"not valid YAML{where}: {problem}", file=str(path)) from err
    return _validate_file(data, str(path))


def config_files(config: str | None, environ: Mapping[str, str]) -> list[Path]:
    """The main file (when it exists) and its drop-ins, in merge order.

    A main file named by ``--config`` or ``HARVESTER_CONFIG`` must exist; the default one may not.
    """
    explicit = config or environ.get(ENV_CONFIG) or None
    main = Path(explicit or DEFAULT_CONFIG)
    files = []
    if main.is_file():
        files.append(main)
    elif explicit:
        origin = "--config" if config else ENV_CONFIG
        raise ConfigError(f"{origin} {main}: no such file")
    dropins = main.parent / "config.d"
    if dropins.is_dir():
        files.extend(sorted((p for p in dropins.iterdir() if p.suffix in (".yaml", ".yml")), key=lambda p: p.name))
    return files


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

    env_paths = [p.strip() for p in environ.get(ENV_PATHS, "").split(os.pathsep) if p.strip()]
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


from ._runtime import check_plan, discover, harvest_options, output_dir_problem  # noqa: E402 - they use the classes above

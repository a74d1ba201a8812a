"""Config files: which ones are read, and each one read and checked against the config schema."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dwellir_harvester.lib.limits import MAX_INTERVAL, MAX_TIMEOUT, one_line, seconds
from dwellir_harvester.lib.redact import is_sensitive, redact_text, redact_values

from ._errors import ConfigError

DEFAULT_CONFIG = "/etc/dwellir-harvester/config.yaml"
ENV_CONFIG = "HARVESTER_CONFIG"


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
_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}
_PREVIEW_SCAN = 400
#: Keys whose values are checked as seconds (``lib.limits.seconds``), with their largest value.
_SECONDS = {"timeout": MAX_TIMEOUT, "interval": MAX_INTERVAL}


def _kind(value: object) -> str:
    """What ``value`` is, without showing it: ``a string``, ``a list``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _preview(value: object) -> str:
    """``value`` as short JSON, with its secrets redacted (a URL's password, a sensitive key's value)."""
    text = json.dumps(redact_values(value), default=_kind, ensure_ascii=False)
    return one_line(redact_text(text[:_PREVIEW_SCAN]), 80)  # redact_text is slow on long text: scan a prefix


def _explain(error: Any, schema: Mapping[str, Any]) -> tuple[str, str]:
    """``(key, message)`` for one jsonschema error, in words an operator reads.

    The value is shown (short, redacted) unless a key on its path is sensitive (``auth_tokens``,
    ``collector_options.x.password``): then only its kind is.
    """
    parts = list(error.absolute_path)
    path = ".".join(str(p) for p in parts)
    if error.validator == "additionalProperties" and not parts:
        known = sorted(schema["properties"])
        extra = sorted(one_line(k, 200) for k in error.instance if k not in known)
        name = extra[0] if extra else "?"
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(known)})"
        return name, f"unknown key{hint}"
    secret = any(isinstance(p, str) and is_sensitive(p) for p in parts)
    got = f"got {_kind(error.instance) if secret else _preview(error.instance)}"
    if error.validator == "type":
        expected = _TYPE_NAMES.get(error.validator_value, str(error.validator_value))
        hint = (
            " (YAML reads a bare null as nothing: quote it, 'null', to mean the name)" if error.instance is None else ""
        )
        return path, f"expected {expected}, {got}{hint}"
    if error.validator == "enum":
        values = sorted({str(v).upper() for v in error.validator_value})
        return path, f"expected one of {', '.join(values)}, {got}"
    if error.validator in _BOUNDS:
        return path, f"must be {_BOUNDS[error.validator]} {error.validator_value}, {got}"
    if error.validator == "minLength":
        return path, "must not be empty" if error.validator_value == 1 else f"shorter than {error.validator_value}"
    if error.validator in ("maxLength", "maxItems"):
        return path, f"longer than {error.validator_value}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if isinstance(error.instance, Mapping) and k not in error.instance]
        return path, f"missing key {missing[0] if missing else '?'!r}"
    if error.validator == "pattern":
        return path, f"must match {error.validator_value}, {got}"
    if error.validator == "additionalProperties":
        extra = sorted(one_line(k, 80) for k in error.instance if k not in error.schema.get("properties", {}))
        accepted = ", ".join(sorted(error.schema.get("properties", {})))
        hint = "; a plugin sink's settings go under 'options'" if parts and parts[0] == "sinks" else ""
        return f"{path}.{extra[0] if extra else '?'}", f"unknown key (known: {accepted}){hint}"
    return path, f"{error.validator} check failed, {got}"


def _validate_file(data: Any, file: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of keys to values, got {_kind(data)}", file=file)
    import jsonschema

    schema = _schema()
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        key, message = _explain(errors[0], schema)
        raise ConfigError(message, file=file, key=key or None)
    for key, maximum in _SECONDS.items():
        if key in data:
            try:
                data[key] = seconds(data[key], key, maximum=maximum)
            except ValueError as err:
                raise ConfigError(str(err), file=file, key=key) from None
    for index, sink in enumerate(data.get("sinks", ())):
        problem = sink_problem(sink)
        if problem:
            where, message = problem
            raise ConfigError(message, file=file, key=f"sinks.{index}" + (f".{where}" if where else ""))
    return data


#: The keys of each built-in sink type besides the common ones; a plugin's settings go under ``options``.
SINK_KEYS = {
    "s3": ("endpoint_url", "bucket", "region", "path_style", "credentials_file"),
    "file": ("directory",),
}
_SINK_REQUIRED = {"s3": "bucket", "file": "directory"}
_SINK_SECONDS = ("timeout", "retry_initial", "retry_max")


def sink_problem(sink: Mapping[str, Any]) -> tuple[str | None, str] | None:
    """What is wrong with one entry of ``sinks`` (already checked against the schema), or None.

    Args:
        sink: the entry.

    Returns:
        ``(key, message)``: the key within the entry (None for the entry as a whole) and what is wrong.
    """
    kind = sink["type"]
    own = SINK_KEYS.get(kind, ("options",))
    for key in sink:
        if key in own or key in ("type", "name", "prefix", *_SINK_SECONDS):
            continue
        if kind in SINK_KEYS:
            return key, f"not a key of a {kind} sink (its keys: {', '.join(own)})"
        return key, f"not a key of the plugin sink {one_line(kind, 64)!r}: put its settings under 'options'"
    required = _SINK_REQUIRED.get(kind)
    if required and required not in sink:
        return None, f"a {kind} sink needs {required!r}"
    for key in _SINK_SECONDS:
        if key in sink:
            try:
                seconds(sink[key], key, maximum=MAX_INTERVAL)
            except ValueError as err:
                return key, str(err)
    if sink.get("retry_max", 300.0) < sink.get("retry_initial", min(5.0, sink.get("retry_max", 300.0))):
        return "retry_max", "must be at least retry_initial"
    if any(part in (".", "..") for part in sink.get("prefix", "").split("/")):
        return "prefix", "must not hold '.' or '..' parts"
    url = sink.get("endpoint_url")
    if url is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            return "endpoint_url", "not a URL"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "endpoint_url", "expected http(s)://host[:port]"
        if parts.username or parts.password:
            return "endpoint_url", "must not hold credentials: use credentials_file or the AWS_* variables"
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            return "endpoint_url", "expected http(s)://host[:port] with no path (the bucket has its own key)"
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """One YAML config file, read strictly (``_yaml.load_yaml_file``) and checked against the config schema.

    Args:
        path: the file.

    Returns:
        Its keys and values (empty for an empty file).

    Raises:
        ConfigError: one line naming the file, and the key where there is one.
    """
    from ._yaml import load_yaml_file

    return _validate_file(load_yaml_file(path), str(path))


def main_config_file(config: str | None, environ: Mapping[str, str]) -> Path:
    """The main config file's path: ``--config``, else ``HARVESTER_CONFIG``, else the default."""
    return Path(config or environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def config_files(config: str | None, environ: Mapping[str, str]) -> list[Path]:
    """The main file (when it exists) and its drop-ins, in merge order.

    A main file named by ``--config`` or ``HARVESTER_CONFIG`` must exist; the default one may not.
    Drop-ins are the files ``*.yaml`` and ``*.yml`` in ``config.d/``, hidden ones (an editor's lock
    file ``.#x.yaml``) left out, as the shell's ``config.d/*.yaml`` would.
    """
    explicit = config or environ.get(ENV_CONFIG) or None
    main = main_config_file(config, environ)
    files = []
    if main.exists():  # whatever it is: reading it says why a FIFO or a directory will not do
        files.append(main)
    elif explicit:
        origin = "--config" if config else ENV_CONFIG
        raise ConfigError(f"{origin} {main}: no such file")
    dropins = main.parent / "config.d"
    if dropins.is_dir():
        names = (p for p in dropins.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))
        files.extend(sorted(names, key=lambda p: p.name))
    return files

"""Config files: which ones are read, and each one read and checked against the config schema."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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

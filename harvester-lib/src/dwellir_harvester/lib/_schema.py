"""JSON Schema helpers: the bundled document schema and validation with readable errors.

jsonschema is imported only when something is validated, so commands that do not validate start fast.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ._errors import DocumentValidationError

SchemaLike = str | os.PathLike[str] | Mapping[str, Any] | None

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$",
)


def bundled_schema_path() -> Path:
    """Return the path of the JSON Schema that describes the harvest document."""
    return Path(__file__).parent / "schemas" / "harvest.schema.json"


def is_rfc3339(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 date-time with an offset (what ``format: date-time`` means).

    Non-strings pass: JSON Schema formats only constrain strings.
    """
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second, off_h, off_m = (int(g) if g else 0 for g in match.groups())
    try:
        datetime(year, month, day, hour, minute, min(second, 59))  # RFC 3339 allows a leap second
    except ValueError:
        return False
    return second <= 60 and off_h < 24 and off_m < 60


def _read_schema_file(path: str) -> Mapping[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"schema file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"schema file {path} is not valid JSON: {err}") from err
    if not isinstance(loaded, Mapping):
        raise ValueError(f"schema file {path} does not hold a JSON object")
    return loaded


def _make_validator(schema: Mapping[str, Any]) -> Any:
    import jsonschema

    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(is_rfc3339)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as err:
        raise ValueError(f"not a valid JSON Schema: {err.message}") from err
    return cls(schema, format_checker=checker)


@functools.lru_cache(maxsize=16)
def _file_validator(path: str) -> Any:
    return _make_validator(_read_schema_file(path))


def _validator(schema: SchemaLike) -> Any:
    if schema is None:
        return _file_validator(str(bundled_schema_path()))
    if isinstance(schema, Mapping):
        return _make_validator(schema)
    return _file_validator(os.path.abspath(os.fspath(schema)))


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def schema_errors(instance: Any, schema: SchemaLike = None) -> list[str]:
    """Every violation of ``schema`` by ``instance``, one line each, ordered by JSON path.

    ``schema`` is a mapping, a path, or ``None`` for the bundled document schema. A schema file that
    is missing or broken raises ``FileNotFoundError`` or ``ValueError`` naming it.
    """
    found = _validator(schema).iter_errors(instance)
    errors = sorted(found, key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def validate_output(instance: Mapping[str, Any], schema: SchemaLike = None) -> None:
    """Check a harvest document against the bundled schema (or ``schema``: a path or a mapping).

    Raises ``DocumentValidationError`` listing every violation with its JSON path.
    """
    errors = schema_errors(instance, schema)
    if errors:
        raise DocumentValidationError(errors)

"""``juju-charm``: the Juju context that charms using the charm helpers leave on this machine.

Option: ``snapshot_dir`` (default ``/var/lib/dwellir-harvester/charms``). The charm helper writes
one snapshot per application, ``<snapshot_dir>/<app>.json``, in format 1::

    {"format": 1, "updated": "2026-11-25T12:00:00+00:00",
     "topology": {"model": "prod", "model_uuid": "…", "application": "polkadot", "unit": "polkadot/0",
                  "charm": "polkadot", "leader": true},
     "config": {"rpc-port": 9944, "api-key": "<redacted>"},
     "relations": [{"endpoint": "grafana-agent", "interface": "cos_agent",
                    "remote_application": "grafana-agent", "units": 1}]}

Data: ``{"applications": {"<app>": {"updated": …, "topology": …, "config": …, "relations": […]}}}``,
by application name. With no snapshots (the directory is missing or empty) the collector succeeds
with no applications and a ``note`` saying so. A snapshot that is not valid JSON or not format 1
(a key missing, a value of the wrong type) makes the entry ``partial`` with a message naming the
file; the other applications are kept.

Defence in depth, whatever the charm wrote: config values whose key contains ``password``,
``secret``, ``token`` or ``key`` (and values holding a PEM block) are shown as ``<redacted>``, and
relations keep only ``endpoint``, ``interface``, ``remote_application`` and ``units``, never
relation data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dwellir_harvester.lib import CollectorPartialError, GenericCollector, is_rfc3339
from dwellir_harvester.lib.limits import NotJSONError, json_data
from dwellir_harvester.lib.redact import REDACTED, is_sensitive, looks_like_key_material, redact_url

from ._files import FileProblem, directory_option, list_dir, read_small_file

FORMAT = 1

TOPOLOGY_FIELDS: dict[str, type] = {
    "model": str,
    "model_uuid": str,
    "application": str,
    "unit": str,
    "charm": str,
    "leader": bool,
}
# remote_application is null for a peer relation seen before any other unit, or a departed app.
RELATION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "endpoint": str,
    "interface": str,
    "remote_application": (str, type(None)),
    "units": int,
}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _typed(value: Any, expected: type | tuple[type, ...]) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, expected)


def _fields(where: str, value: Any, fields: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The known ``fields`` of the object ``value``, each present and of its type; others dropped."""
    if not isinstance(value, dict):
        raise FileProblem(f"{where} must be an object, not {type(value).__name__}")
    missing = [name for name in fields if name not in value]
    if missing:
        raise FileProblem(f"{where} is missing {', '.join(repr(m) for m in missing)}")
    for name, expected in fields.items():
        if not _typed(value[name], expected):
            names = [t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,))]
            wanted = (
                "a non-negative integer" if expected is int else "a " + " or ".join(names).replace("NoneType", "null")
            )
            raise FileProblem(f"{where}.{name} must be {wanted}, not {type(value[name]).__name__}")
    return {name: value[name] for name in fields}


def _config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FileProblem(f"config must be an object, not {type(value).__name__}")
    config: dict[str, Any] = {}
    for key, item in sorted(value.items()):
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise FileProblem(f"config[{key!r}] must be a string, number, boolean or null")
        secret = is_sensitive(key) or looks_like_key_material(item)
        config[key] = REDACTED if secret else (redact_url(item) if isinstance(item, str) else item)
    return config


def read_snapshot(path: Path) -> dict[str, Any]:
    """The application's context from a format-1 snapshot, re-redacted; ``FileProblem`` if malformed."""
    raw = read_small_file(path)
    try:
        snapshot = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as err:  # its message gives the position, never the text
        raise FileProblem(f"not valid JSON: {err}") from None
    except ValueError as err:  # not UTF-8, NaN / Infinity, 1e999, an integer of thousands of digits
        raise FileProblem(f"not valid JSON: {err}") from None
    except RecursionError:
        raise FileProblem("not valid JSON: nested too deeply to read") from None
    try:
        json_data(snapshot, "its content")
    except NotJSONError as err:
        raise FileProblem(str(err)) from None
    if not isinstance(snapshot, dict):
        raise FileProblem(f"holds a JSON {type(snapshot).__name__}, not an object")
    if "format" not in snapshot:
        raise FileProblem("has no 'format'")
    found = snapshot["format"]
    if not _typed(found, int) or found != FORMAT:
        shown = repr(found) if isinstance(found, (int, float, str)) and len(repr(found)) < 40 else type(found).__name__
        raise FileProblem(f"has format {shown}; this collector reads format {FORMAT}")
    missing = [key for key in ("updated", "topology", "config", "relations") if key not in snapshot]
    if missing:
        raise FileProblem(f"is missing {', '.join(repr(m) for m in missing)}")
    updated = snapshot["updated"]
    if not isinstance(updated, str) or not is_rfc3339(updated):
        raise FileProblem("updated must be an RFC 3339 date-time with an offset")
    relations = snapshot["relations"]
    if not isinstance(relations, list):
        raise FileProblem(f"relations must be a list, not {type(relations).__name__}")
    return {
        "updated": updated,
        "topology": _fields("topology", snapshot["topology"], TOPOLOGY_FIELDS),
        "config": _config(snapshot["config"]),
        "relations": [_fields(f"relations[{i}]", item, RELATION_FIELDS) for i, item in enumerate(relations)],
    }


def _snapshot_files(directory: Path) -> list[Path]:
    """The snapshots in name order; ``CollectorFailedError`` if the directory is unusable."""
    names = [entry.name for entry in list_dir(directory, "snapshot_dir")]
    return [directory / name for name in names if name.endswith(".json") and not name.startswith(".")]


_SCHEMA_SCALAR = {"type": ["string", "number", "boolean", "null"]}


class JujuCharmCollector(GenericCollector):
    """Topology, config (secrets redacted) and relations (no data) of the charms on this machine."""

    NAME = "juju-charm"
    VERSION = "1.0.0"
    TIMEOUT = 10.0
    SCHEMA = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["applications"],
        "properties": {
            "applications": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["updated", "topology", "config", "relations"],
                    "properties": {
                        "updated": {"type": "string", "format": "date-time"},
                        "topology": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": list(TOPOLOGY_FIELDS),
                            "properties": {
                                **{name: {"type": "string"} for name in TOPOLOGY_FIELDS if name != "leader"},
                                "leader": {"type": "boolean"},
                            },
                        },
                        "config": {"type": "object", "additionalProperties": _SCHEMA_SCALAR},
                        "relations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": list(RELATION_FIELDS),
                                "properties": {
                                    "endpoint": {"type": "string"},
                                    "interface": {"type": "string"},
                                    "remote_application": {"type": ["string", "null"]},
                                    "units": {"type": "integer", "minimum": 0},
                                },
                            },
                        },
                    },
                },
            },
            "note": {"type": "string"},
        },
    }

    def __init__(self, snapshot_dir: str = "/var/lib/dwellir-harvester/charms") -> None:
        self.snapshot_dir = directory_option(snapshot_dir, "snapshot_dir")

    def collect(self) -> dict[str, Any]:
        """Collect this collector's data (see the module docstring)."""
        applications: dict[str, Any] = {}
        errors: list[str] = []
        files = _snapshot_files(self.snapshot_dir)
        for path in files:
            try:
                applications[path.stem] = read_snapshot(path)
            except FileProblem as err:
                errors.append(f"{path}: {err}")
        data: dict[str, Any] = {"applications": dict(sorted(applications.items()))}
        if not files:
            where = "it does not exist" if not self.snapshot_dir.exists() else "it holds no *.json snapshot"
            data["note"] = f"no charm snapshots found under {self.snapshot_dir} ({where})"
        if errors:
            raise CollectorPartialError(errors, data=data)
        return data

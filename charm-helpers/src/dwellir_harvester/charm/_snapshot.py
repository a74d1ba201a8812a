"""The snapshot of a charm's Juju context that the runner's ``juju-charm`` collector reads.

Format 1, one file per application, ``<snapshot_dir>/<app-name>.json``::

    {"format": 1,
     "updated": "2025-01-01T12:00:00+00:00",
     "topology": {"model": "m", "model_uuid": "…", "application": "app", "unit": "app/0",
                  "charm": "my-charm", "leader": true},
     "config": {"rpc-url": "http://…", "api-key": "<redacted>"},
     "relations": [{"endpoint": "db", "interface": "pgsql", "remote_application": "postgresql",
                    "units": 1}]}

The config goes through ``dwellir_harvester.lib.redact.redact_values``, the rule the runner's
collectors apply: an option whose name contains one of ``SECRET_WORDS`` (``pass``, ``secret``,
``token``, ``key``, ``auth``, ``seed``, ``mnemonic``, ``wallet``, ``private``, …, any case) and
every value that looks like key material (a PEM block, 32 bytes or more of hex) is replaced by
``"<redacted>"``, and URLs lose their credentials (``https://<redacted>@host``). Options of type
``secret`` are replaced whatever their name. Relations are described by their endpoint,
interface, remote application and number of remote units: their data is never copied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import ops

from dwellir_harvester.lib.redact import REDACTED, redact_values

FORMAT = 1


def now_rfc3339() -> str:
    """Return the current time as RFC 3339 with an explicit UTC offset."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def secret_options(charm: ops.CharmBase) -> set[str]:
    """Return the config options the charm's metadata declares with ``type: secret``."""
    declared: Mapping[str, Any] = getattr(charm.framework.meta, "config", None) or {}  # older ops: no CharmMeta.config
    return {name for name, option in declared.items() if getattr(option, "type", None) == "secret"}


def redact_config(config: Mapping[str, Any], secret_typed: set[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with its secrets redacted (``redact_values``, and every secret-typed option)."""
    redacted: dict[str, Any] = redact_values(
        {name: value for name, value in config.items() if name not in secret_typed}
    )
    return {name: REDACTED if name in secret_typed else redacted[name] for name in config}


def relations(charm: ops.CharmBase) -> list[dict[str, Any]]:
    """Return every relation of the unit, endpoint by endpoint in metadata order, without any data."""
    found: list[dict[str, Any]] = []
    for endpoint, meta in charm.framework.meta.relations.items():
        for relation in charm.model.relations.get(endpoint, []):
            found.append(
                {
                    "endpoint": endpoint,
                    "interface": meta.interface_name,
                    "remote_application": relation.app.name if relation.app is not None else None,
                    "units": len(relation.units),
                }
            )
    return found


def build(charm: ops.CharmBase, updated: str | None = None) -> dict[str, Any]:
    """Return the snapshot of ``charm``'s Juju context right now (format 1)."""
    model = charm.model
    return {
        "format": FORMAT,
        "updated": updated or now_rfc3339(),
        "topology": {
            "model": model.name,
            "model_uuid": model.uuid,
            "application": model.app.name,
            "unit": model.unit.name,
            "charm": charm.framework.meta.name,
            "leader": model.unit.is_leader(),
        },
        "config": redact_config(dict(charm.config), secret_options(charm)),
        "relations": relations(charm),
    }


def render(snapshot: Mapping[str, Any]) -> bytes:
    """Return the snapshot file's content: indented JSON and a final newline."""
    return (json.dumps(snapshot, indent=2) + "\n").encode("utf-8")


def same_content(previous: bytes | None, snapshot: Mapping[str, Any]) -> bool:
    """Return whether the file's content equals ``snapshot`` apart from ``updated``."""
    if previous is None:
        return False
    try:
        old = json.loads(previous)
    except ValueError:
        return False
    if not isinstance(old, dict):
        return False
    old.pop("updated", None)
    return old == {k: v for k, v in snapshot.items() if k != "updated"}

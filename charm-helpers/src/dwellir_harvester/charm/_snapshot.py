"""The snapshot of a charm's Juju context that the runner's ``juju-charm`` collector reads.

Format 1, one file per application, ``<snapshot_dir>/<app-name>.json``::

    {"format": 1,
     "updated": "2025-01-01T12:00:00+00:00",
     "topology": {"model": "m", "model_uuid": "…", "application": "app", "unit": "app/0",
                  "charm": "my-charm", "leader": true},
     "config": {"rpc-url": "http://…", "api-key": "<redacted>"},
     "relations": [{"endpoint": "db", "interface": "pgsql", "remote_application": "postgresql",
                    "units": 1}]}

Config options of type ``secret`` and every option whose name contains ``password``, ``secret``,
``token``, ``key`` (or the other words of ``dwellir_harvester.lib.redact.SECRET_WORDS``, any case)
are replaced by ``"<redacted>"``: the same rule the runner's collectors apply. Relations are described by their
endpoint, interface, remote application and number of remote units: their data is never copied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import ops

from dwellir_harvester.lib.redact import REDACTED, is_sensitive, looks_like_pem, redact_url

FORMAT = 1


def now_rfc3339() -> str:
    """The current time as RFC 3339 with an explicit UTC offset."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def secret_options(charm: ops.CharmBase) -> set[str]:
    """The config options the charm's metadata declares with ``type: secret``."""
    declared: Mapping[str, Any] = getattr(charm.framework.meta, "config", None) or {}  # older ops: no CharmMeta.config
    return {name for name, option in declared.items() if getattr(option, "type", None) == "secret"}


def _scrub(value: Any) -> Any:
    """A string value with URL credentials hidden (``http://user:pw@…``); a PEM block redacted."""
    if not isinstance(value, str):
        return value
    return REDACTED if looks_like_pem(value) else redact_url(value)


def redact_config(config: Mapping[str, Any], secret_typed: set[str]) -> dict[str, Any]:
    """A copy of ``config`` with secret-typed and secret-sounding options replaced by ``<redacted>``."""
    return {
        name: REDACTED if name in secret_typed or is_sensitive(name) else _scrub(value)
        for name, value in config.items()
    }


def relations(charm: ops.CharmBase) -> list[dict[str, Any]]:
    """Every relation of the unit, endpoint by endpoint in metadata order, without any data."""
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
    """The snapshot of ``charm``'s Juju context right now (format 1)."""
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
    return (json.dumps(snapshot, indent=2) + "\n").encode("utf-8")


def same_content(previous: bytes | None, snapshot: Mapping[str, Any]) -> bool:
    """Whether the file's content equals ``snapshot`` apart from ``updated``."""
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

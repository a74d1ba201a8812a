"""Object keys and content hashes of harvest documents."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TIME = re.compile(r"^[0-9T:.+Z-]{10,40}$")
MAX_PART = 128
#: The fields of a document that change on every harvest, left out of its content hash.
_VOLATILE = ("collection_time", "duration_ms")


def safe_part(text: object, fallback: str = "unknown") -> str:
    """``text`` as one safe key component: letters, digits, ``.``, ``_`` and ``-``; never ``.`` or ``..``."""
    part = _UNSAFE.sub("-", str(text))[:MAX_PART].strip(".-")
    return part or fallback


def node_name(document: Any) -> str:
    """The node a document describes: ``<model-uuid>/<unit with / replaced by ->``, else the hostname.

    The Juju context comes from the ``juju-charm`` entry (the first application, by name, whose
    snapshot names both a model UUID and a unit), else from the ``juju`` entry (its model and its
    first deployed unit). Without either: the ``host`` data's hostname, else this machine's.
    """
    collectors = document.get("collectors", {}) if isinstance(document, dict) else {}
    charm = _data(collectors, "juju-charm").get("applications")
    if isinstance(charm, dict):
        for app in sorted(charm, key=str):
            topology = charm[app].get("topology") if isinstance(charm[app], dict) else None
            if isinstance(topology, dict) and topology.get("model_uuid") and topology.get("unit"):
                return f"{safe_part(topology['model_uuid'])}/{safe_part(str(topology['unit']).replace('/', '-'))}"
    juju = _data(collectors, "juju")
    units = juju.get("deployed_units")
    if juju.get("model") and isinstance(units, list) and units:
        return f"{safe_part(juju['model'])}/{safe_part(str(units[0]).replace('/', '-'))}"
    host = document.get("host") if isinstance(document, dict) else None
    hostname = host.get("hostname") if isinstance(host, dict) else None
    return safe_part(hostname or socket.gethostname())


def _data(collectors: Any, name: str) -> dict[str, Any]:
    entry = collectors.get(name) if isinstance(collectors, dict) else None
    data = entry.get("data") if isinstance(entry, dict) else None
    return data if isinstance(data, dict) else {}


def content_hash(document: Any) -> str:
    """SHA-256 of the document without what changes on every harvest (collection times, durations).

    Two harvests of an unchanged node hash alike, so the second makes no new history object.
    """
    stripped = dict(document)
    harvester = stripped.get("harvester")
    if isinstance(harvester, dict):
        stripped["harvester"] = {k: v for k, v in harvester.items() if k not in _VOLATILE}
    collectors = stripped.get("collectors")
    if isinstance(collectors, dict):
        stripped["collectors"] = {
            name: {**entry, "meta": {k: v for k, v in entry["meta"].items() if k not in _VOLATILE}}
            if isinstance(entry, dict) and isinstance(entry.get("meta"), dict)
            else entry
            for name, entry in collectors.items()
        }
    canonical = json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def join_key(*parts: str) -> str:
    """``parts`` joined by ``/``, empty parts and stray slashes left out."""
    return "/".join(p for part in parts for p in part.split("/") if p)


def latest_key(prefix: str, node: str) -> str:
    """``<prefix>/<node>/latest.json``."""
    return join_key(prefix, node, "latest.json")


def history_key(prefix: str, node: str, collection_time: object) -> str:
    """``<prefix>/<node>/history/<collection_time>.json``."""
    stamp = str(collection_time)
    stamp = stamp if _TIME.match(stamp) else safe_part(stamp)
    return join_key(prefix, node, "history", f"{stamp}.json")

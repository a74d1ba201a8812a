"""``dwellir-harvester fleet SOURCE``: every node's ``latest.json`` under a bucket prefix or a directory.

One line per node: host, model/unit, chain, network, client and version, best block, sync state,
the age of its document and its failing collectors; ``--json`` for scripts. Nodes whose document is
older than ``--stale`` seconds are flagged, and so are chains whose nodes run different client
versions. Objects are read in parallel (a thread pool); an object that cannot be read or is not a
harvest document (not JSON, too large, too deep, the wrong shape) gives a one-line note for its node
and the rest is listed. Exit status: 0 every node fresh and readable, 1 some node stale or
unreadable, 2 a usage error or a source that cannot be listed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TextIO

from dwellir_harvester.config import Settings
from dwellir_harvester.lib import FAILING
from dwellir_harvester.lib.limits import MAX_DEPTH, one_line
from dwellir_harvester.lib.run import UsageError

#: The most ``latest.json`` objects read from one source.
MAX_NODES = 100_000
#: The largest ``latest.json`` read, in bytes.
MAX_OBJECT_BYTES = 8 * 1024 * 1024
#: Parallel reads.
WORKERS = 16
#: How deep nodes are looked for under the prefix (``<model-uuid>/<unit>`` is two levels).
MAX_LEVELS = 4
#: The longest value shown in a column.
MAX_FIELD = 120
LATEST = "latest.json"


class Chain(NamedTuple):
    """One blockchain entry of a node's document."""

    collector: str
    ecosystem: str
    chain_id: str
    network: str
    client: str
    version: str
    best_block: int | None
    syncing: bool | None


class Node(NamedTuple):
    """One node: where its document is, what it says, or why it could not be read."""

    node: str
    host: str = ""
    chains: tuple[Chain, ...] = ()
    collection_time: str = ""
    age_seconds: float | None = None
    failing: tuple[str, ...] = ()
    error: str | None = None


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return one_line(value, MAX_FIELD)


def _age(stamp: Any, now: float) -> float | None:
    if not isinstance(stamp, str) or len(stamp) > 64:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return now - when.timestamp()


def summarize(node: str, raw: bytes, now: float) -> Node:
    """What one ``latest.json`` says; a ``Node`` with ``error`` when it is not a harvest document.

    Args:
        node: the node's name (its key without the prefix and ``/latest.json``).
        raw: the object's bytes.
        now: Unix time, for the age.

    Returns:
        The node's summary.
    """
    from ._main import _load_json

    try:
        document = _load_json(raw.decode("utf-8"), MAX_DEPTH)
    except UnicodeDecodeError:
        return Node(node, error="not UTF-8")
    except ValueError as err:
        return Node(node, error=f"not JSON: {one_line(err, 120)}")
    if not isinstance(document, dict) or not isinstance(document.get("harvester"), dict):
        return Node(node, error="not a harvest document (no 'harvester' mapping)")
    collectors = document.get("collectors")
    if not isinstance(collectors, dict):
        return Node(node, error="not a harvest document (no 'collectors' mapping)")
    host = document.get("host")
    chains, failing = [], []
    for name, entry in sorted(collectors.items()):
        if not isinstance(entry, dict):
            continue
        meta = _map(entry.get("meta"))
        data = _map(entry.get("data"))
        if meta.get("status") in FAILING:
            failing.append(one_line(name, 60))
        if meta.get("collector_type") != "blockchain":
            continue
        chain = _map(data.get("blockchain"))
        workload = _map(data.get("workload"))
        sync = _map(data.get("sync"))
        best = sync.get("best_block")
        syncing = sync.get("syncing")
        chains.append(
            Chain(
                one_line(name, 60),
                _text(chain.get("blockchain_ecosystem")),
                _text(chain.get("chain_id")),
                _text(chain.get("blockchain_network_name")),
                _text(workload.get("client_name")),
                _text(workload.get("client_version")),
                best if isinstance(best, int) and not isinstance(best, bool) and best >= 0 else None,
                syncing if isinstance(syncing, bool) else None,
            )
        )
    stamp = document["harvester"].get("collection_time")
    return Node(
        node,
        host=_text(host.get("hostname")) if isinstance(host, dict) else "",
        chains=tuple(chains),
        collection_time=_text(stamp),
        age_seconds=_age(stamp, now),
        failing=tuple(failing),
    )


class Source(NamedTuple):
    """Where the documents are: the node names found, and how to read one."""

    nodes: list[str]
    read: Callable[[str], bytes]
    truncated: bool


def _directory_source(root: str) -> Source:
    from dwellir_harvester.lib.files import read_bytes

    if not os.path.isdir(root):
        raise UsageError(f"{root}: no such directory (expected a directory or s3://bucket/prefix)")
    nodes: list[str] = []
    truncated = False
    for directory, subdirs, files in os.walk(root, onerror=None, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if d != "history" and not d.startswith("."))
        if LATEST in files and directory != root:
            if len(nodes) >= MAX_NODES:
                truncated = True
                break
            nodes.append(os.path.relpath(directory, root))

    def read(node: str) -> bytes:
        data = read_bytes(os.path.join(root, node, LATEST), MAX_OBJECT_BYTES)
        if data is None:
            raise OSError("vanished while being read")
        return data

    return Source(sorted(nodes), read, truncated)


def _s3_source(url: str, settings: Settings, environ: Mapping[str, str]) -> Source:
    from dwellir_harvester.sinks._s3 import S3Sink

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = "/".join(p for p in prefix.split("/") if p)
    if not bucket:
        raise UsageError(f"{url}: expected s3://bucket[/prefix]")
    configured = next((s for s in settings.sinks if s.type == "s3" and s.settings.get("bucket") == bucket), None)
    sink = S3Sink.from_settings(configured.settings if configured else {"bucket": bucket}, environ)
    from dwellir_harvester.sinks import SinkError

    base = f"{prefix}/" if prefix else ""
    try:
        nodes, truncated = _walk_s3(sink, base)
    except SinkError as err:
        raise UsageError(f"cannot list {url}: {err}") from None

    def read(node: str) -> bytes:
        return sink.get(f"{base}{node}/{LATEST}", MAX_OBJECT_BYTES)

    return Source(sorted(nodes), read, truncated)


def _walk_s3(sink: Any, base: str) -> tuple[list[str], bool]:
    """The nodes under ``base``: each "directory" holding a ``latest.json``, found level by level.

    Listing with a delimiter, in parallel per level, never pages through the history objects
    (hundreds per node and day): the calls are one per directory, down to ``MAX_LEVELS`` levels.
    """
    nodes: list[str] = []
    level = [base]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for _ in range(MAX_LEVELS):
            if not level:
                break
            below: list[str] = []
            for prefix, (dirs, keys) in zip(level, pool.map(sink.children, level), strict=True):
                if f"{prefix}{LATEST}" in keys and prefix != base:
                    nodes.append(prefix[len(base) : -1])
                below.extend(d for d in dirs if d.rstrip("/").rsplit("/", 1)[-1] != "history")
                if len(nodes) >= MAX_NODES:
                    return sorted(nodes[:MAX_NODES]), True
                if len(below) > MAX_NODES * 2:
                    return sorted(nodes), True
            level = below
    return sorted(nodes), False


def read_fleet(source: Source, now: float, workers: int = WORKERS) -> list[Node]:
    """Read and summarize every node of ``source`` in parallel; a node that cannot be read gets ``error``."""

    def one(node: str) -> Node:
        try:
            return summarize(node, source.read(node), now)
        except Exception as err:  # noqa: BLE001 - one unreadable object is one note, never the end of the listing
            return Node(node, error=one_line(f"cannot read: {err}", 200))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, source.nodes))


def disagreements(nodes: Iterable[Node]) -> list[dict[str, Any]]:
    """Chains (ecosystem, chain id, network) whose nodes run different client versions."""
    chains: dict[tuple[str, str, str], dict[str, int]] = {}
    for node in nodes:
        for chain in node.chains:
            versions = chains.setdefault((chain.ecosystem, chain.chain_id, chain.network), {})
            client = f"{chain.client} {chain.version}".strip()
            versions[client] = versions.get(client, 0) + 1
    return [
        {"ecosystem": key[0], "chain_id": key[1], "network": key[2], "clients": dict(sorted(versions.items()))}
        for key, versions in sorted(chains.items())
        if len(versions) > 1
    ]


def _row(node: Node, stale: float) -> tuple[str, ...]:
    model, _, unit = node.node.partition("/")
    where = f"{model}/{unit}" if unit else "-"
    if node.error:
        return (node.node, where, "-", "-", "-", "-", "-", "-", f"UNREADABLE: {node.error}")
    chains = node.chains or (Chain("", "", "", "", "", "", None, None),)
    age = "?" if node.age_seconds is None else _duration(node.age_seconds)
    flags = []
    if node.age_seconds is None or node.age_seconds > stale:
        flags.append("STALE")
    if node.failing:
        flags.append("failing: " + ",".join(node.failing))
    return (
        node.host or node.node,
        where,
        ",".join(c.chain_id or c.ecosystem or "-" for c in chains),
        ",".join(c.network or "-" for c in chains),
        ",".join(f"{c.client} {c.version}".strip() or "-" for c in chains),
        ",".join("-" if c.best_block is None else str(c.best_block) for c in chains),
        ",".join({True: "syncing", False: "synced", None: "-"}[c.syncing] for c in chains),
        age,
        " ".join(flags) or "ok",
    )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 0:
        return "future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def is_stale(node: Node, stale: float) -> bool:
    """Whether a node's document is older than ``stale`` seconds (or its time unreadable)."""
    return node.error is None and (node.age_seconds is None or node.age_seconds > stale)


def cmd_fleet(args: Any, settings: Settings, out: TextIO) -> int:
    """The ``fleet`` verb; see the module docstring."""
    import time

    source_text: str = args.source
    if source_text.startswith("s3://"):
        source = _s3_source(source_text, settings, os.environ)
    else:
        source = _directory_source(source_text)
    now = time.time()
    nodes = read_fleet(source, now)
    disagree = disagreements(nodes)
    stale = float(args.stale)
    if args.json:
        report = {
            "source": source_text,
            "nodes": [
                {
                    "node": n.node,
                    "host": n.host,
                    "chains": [c._asdict() for c in n.chains],
                    "collection_time": n.collection_time,
                    "age_seconds": n.age_seconds,
                    "stale": is_stale(n, stale),
                    "failing": list(n.failing),
                    "error": n.error,
                }
                for n in nodes
            ],
            "disagreements": disagree,
            "truncated": source.truncated,
        }
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        _table(
            out,
            [("HOST", "MODEL/UNIT", "CHAIN", "NETWORK", "CLIENT", "BEST", "SYNC", "AGE", "NOTES")]
            + [_row(n, stale) for n in nodes],
        )
        for item in disagree:
            clients = ", ".join(f"{client} on {count} node(s)" for client, count in item["clients"].items())
            out.write(f"versions differ on {item['ecosystem']} {item['chain_id']} {item['network']}: {clients}\n")
        if source.truncated:
            sys.stderr.write(f"fleet: listed the first {MAX_NODES} nodes only\n")
    bad = any(n.error for n in nodes) or any(is_stale(n, stale) for n in nodes)
    return 1 if bad else 0


def _table(out: TextIO, rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] + "\n")

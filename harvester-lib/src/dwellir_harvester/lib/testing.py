"""Run a collector in a test, without discovery, Juju or the daemon.

::

    from dwellir_harvester.lib.testing import run_collector

    def test_peers(rpc_server):
        entry = run_collector(PeersCollector, options={"rpc_url": rpc_server.url})
        assert entry["meta"]["status"] == "success"
        assert entry["data"]["peers"] == 12

The entry is exactly what a harvest would put under ``collectors.<name>``: the collector runs in
its own thread under its timeout, its options are checked against its constructor, and (unless
``validate=False``) its data is checked against its ``SCHEMA`` and the entry against the bundled
document schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._collector import CollectorBase
from ._engine import build_document, run_spec
from ._loader import spec_for_class
from ._schema import validate_output
from ._types import Entry

__all__ = ["run_collector"]


def run_collector(
    collector: type[CollectorBase],
    options: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    validate: bool = True,
) -> Entry:
    """Run ``collector(**options)`` and return its entry: ``{"meta": {...}, "data": {...}}``.

    Raises ``CollectorOptionError`` for options the constructor does not take, ``TypeError`` for a
    class that is not a usable collector. A collector that fails or times out does not raise: its
    entry says so (``meta.status`` and ``meta.errors``).
    """
    entry = run_spec(spec_for_class(collector), options, timeout, validate)
    if validate:
        meta = entry["meta"]
        document = build_document({collector.NAME: entry}, meta["collection_time"], meta["duration_ms"] / 1000)
        validate_output(document)
    return entry

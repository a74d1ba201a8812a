"""Sinks: where the daemon sends each finished harvest document, past one machine.

::

    from dwellir_harvester.sinks import Sink, SinkError

    class MySink(Sink):               # registered in the entry-point group dwellir_harvester.sinks
        def __init__(self, url: str):  # settings: the sink entry's ``options``
            self.url = url

        def send(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
            ...                        # raise SinkError (or anything) when it failed: it is retried

Built-in types, registered in the same group by ``dwellir-harvester``: ``s3`` (any S3-compatible
endpoint, through the optional extra ``dwellir-harvester[s3]``) and ``file`` (a directory). Each
harvest document is stored at ``<prefix>/<node>/history/<collection_time>.json`` and
``<prefix>/<node>/latest.json`` (``node_name``); a document whose ``content_hash`` equals the last
one delivered only replaces ``latest.json``.

Delivery: ``build_sinks(settings)`` gives a ``SinkSet`` of ``Sender`` threads, one per sink. Every
document handed to ``SinkSet.submit`` is spooled first (``Spool``: one file per document under
``spool_dir/<sink name>/``, mode 0600, bounded by ``spool_max_documents`` and ``spool_max_bytes``,
oldest dropped first), then sent, then removed; failed sends are retried with exponential backoff
and jitter, in order, across restarts. At least once: the keys make a repeat harmless.
"""

from ._base import Sink, SinkError
from ._build import GROUP, SinkSet, build_sink, build_sinks, load_sink_type, sink_types
from ._keys import content_hash, history_key, latest_key, node_name
from ._sender import Sender, SinkStats
from ._spool import Spool, SpoolEntry

__all__ = [
    "GROUP",
    "Sender",
    "Sink",
    "SinkError",
    "SinkSet",
    "SinkStats",
    "Spool",
    "SpoolEntry",
    "build_sink",
    "build_sinks",
    "content_hash",
    "history_key",
    "latest_key",
    "load_sink_type",
    "node_name",
    "sink_types",
]

"""The Dwellir Harvester SDK: write collectors, discover them, harvest them.

A collector is a class with a ``NAME`` and a ``collect()`` method that returns its data::

    from dwellir_harvester.lib import GenericCollector, CollectorPartialError

    class PeersCollector(GenericCollector):
        NAME = "peers"
        VERSION = "1.0.0"
        TIMEOUT = 5.0                      # seconds; the engine enforces it

        def __init__(self, rpc_url: str = "http://127.0.0.1:9944"):   # options come from config
            self.rpc_url = rpc_url

        def collect(self) -> dict:
            return {"peers": 12}

The public API:

Writing collectors
    ``CollectorBase``, ``GenericCollector``, ``BlockchainCollector`` — the base classes.
    ``CollectResult`` — data plus messages, an alternative to a plain ``dict``.
    ``CollectorError`` (base of every error here), ``CollectorPartialError`` (status ``partial``,
    data kept), ``CollectorFailedError`` (status ``failed`` with a clean message).

Discovering collectors
    ``load_collectors(paths)`` — built-ins, then entry points (group ``dwellir_harvester.collectors``),
    then plugin paths; returns a ``Registry``, a mapping of name to class that also knows each
    collector's ``CollectorSpec`` (source, overrides, checked class attributes) and the plugins that
    failed to load. ``UnknownCollectorError``, ``PluginPathError``. (``Collectors`` is the old,
    deprecated name of ``Registry``.) ``env_plugin_paths()`` reads the plugin paths of
    ``HARVESTER_COLLECTOR_PATHS`` (``PATHS_ENV``); ``check_plugin_dir(path)`` says why a plugin
    directory cannot be used (``PluginPathError``) without importing anything.

Harvesting
    ``harvest(selection, registry=..., ...)`` — run collectors concurrently, each under its timeout, and return
    the document; ``overall_status(document)`` and ``collector_statuses(document)``;
    ``CollectorOptionError``.

The document, typed
    ``Document``, ``HarvesterSection``, ``Entry``, ``EntryMeta``, ``Problem`` (``TypedDict``),
    ``Status`` (a ``Literal`` of
    ``success``, ``partial``, ``failed``, ``timeout``), ``STATUSES`` and ``FAILING`` (the statuses
    that mean no usable data).

Schemas
    ``bundled_schema_path()``, ``validate_output(document)``, ``DocumentValidationError``,
    ``is_rfc3339(value)`` (what ``format: date-time`` means here: RFC 3339 with an offset).

Submodules: ``dwellir_harvester.lib.jsonrpc`` (a small JSON-RPC client for collectors),
``dwellir_harvester.lib.redact`` (keep secrets out of data), ``dwellir_harvester.lib.limits`` (the
bounds every input is checked against, and safe one-line messages), ``dwellir_harvester.lib.files``
(atomic writes, bounded reads, trust checks), ``dwellir_harvester.lib.isolation`` (``WorkerPool``:
discover and run collectors in worker processes the harvester can kill; the worker itself is
``python -m dwellir_harvester.lib.worker``), ``dwellir_harvester.lib.testing`` (run a collector in
a test), and ``python -m dwellir_harvester.lib.run module:Class`` (run a collector from the shell).
"""

from ._collector import BlockchainCollector, CollectorBase, CollectResult, GenericCollector
from ._engine import collector_statuses, harvest, overall_status
from ._errors import (
    CollectorError,
    CollectorFailedError,
    CollectorOptionError,
    CollectorPartialError,
    DocumentValidationError,
    PluginPathError,
    UnknownCollectorError,
)
from ._loader import PATHS_ENV, CollectorSpec, Registry, check_plugin_dir, env_plugin_paths, load_collectors
from ._schema import bundled_schema_path, is_rfc3339, validate_output
from ._types import FAILING, STATUSES, Document, Entry, EntryMeta, HarvesterSection, Problem, Status
from ._version import __version__

__all__ = [
    "FAILING",
    "PATHS_ENV",
    "STATUSES",
    "BlockchainCollector",
    "CollectResult",
    "CollectorBase",
    "CollectorError",
    "CollectorFailedError",
    "CollectorOptionError",
    "CollectorPartialError",
    "CollectorSpec",
    "Document",
    "DocumentValidationError",
    "Entry",
    "EntryMeta",
    "GenericCollector",
    "HarvesterSection",
    "PluginPathError",
    "Problem",
    "Registry",
    "Status",
    "UnknownCollectorError",
    "__version__",
    "bundled_schema_path",
    "check_plugin_dir",
    "collector_statuses",
    "env_plugin_paths",
    "harvest",
    "is_rfc3339",
    "load_collectors",
    "overall_status",
    "validate_output",
]


def __getattr__(name: str) -> object:
    """Old names, kept working for one minor version with a ``DeprecationWarning``."""
    if name == "Collectors":
        import warnings

        warnings.warn(
            "dwellir_harvester.lib.Collectors is deprecated; use dwellir_harvester.lib.Registry",
            DeprecationWarning,
            stacklevel=2,
        )
        return Registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

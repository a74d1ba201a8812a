"""Finding sink types (entry points) and building the configured sinks with their spools and senders."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dwellir_harvester.config import ConfigError, Settings, SinkSpec
from dwellir_harvester.lib.limits import describe_error, one_line

from ._base import Sink
from ._sender import Sender, SinkStats
from ._spool import Spool

logger = logging.getLogger(__name__)

#: The entry-point group of sink types: ``<type name> = "package.module:SinkClass"``.
GROUP = "dwellir_harvester.sinks"
#: The distribution whose entry points are the built-in sinks.
DISTRIBUTION = "dwellir-harvester"


def sink_types() -> dict[str, Any]:
    """The installed sink types, ``{type name: entry point}``: built-ins first, others override them (warned)."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    origins: dict[str, str] = {}
    points = sorted(
        entry_points(group=GROUP),
        key=lambda ep: (ep.dist is None or ep.dist.name != DISTRIBUTION, ep.dist.name if ep.dist else "", ep.name),
    )
    for point in points:
        origin = f"{point.dist.name if point.dist else '?'}[{point.name}]"
        if point.name in found:
            logger.warning("sink type %r of %s overrides the one of %s", point.name, origin, origins[point.name])
        found[point.name], origins[point.name] = point, origin
    return found


def load_sink_type(name: str, types: Mapping[str, Any] | None = None) -> type[Sink]:
    """The ``Sink`` subclass registered as ``name``.

    Raises:
        ConfigError: no such type (listing the known ones), or its entry point fails to import or
            is not a ``Sink`` subclass.
    """
    types = sink_types() if types is None else types
    point = types.get(name)
    if point is None:
        known = ", ".join(sorted(types)) or "none"
        raise ConfigError(f"unknown sink type {one_line(name, 64)!r} (installed: {known})", key="sinks")
    try:
        loaded = point.load()
    except Exception as err:
        raise ConfigError(f"sink type {name!r} ({point.value}) cannot be loaded: {describe_error(err)}") from err
    if not (isinstance(loaded, type) and issubclass(loaded, Sink)):
        raise ConfigError(f"sink type {name!r} ({point.value}) is not a subclass of dwellir_harvester.sinks.Sink")
    return loaded


def build_sink(spec: SinkSpec, environ: Mapping[str, str], types: Mapping[str, Any] | None = None) -> Sink:
    """The sink of one configured entry.

    Raises:
        ConfigError: naming the file and the sink when it cannot be made.
    """
    try:
        cls = load_sink_type(spec.type, types)
    except ConfigError as err:
        raise ConfigError(f"sink {spec.name}: {err.message}", file=spec.origin, key="sinks") from None
    options = spec.settings.get("options", {})
    if cls.from_settings.__func__ is Sink.from_settings.__func__:  # type: ignore[attr-defined]
        import inspect

        try:
            inspect.signature(cls).bind(**options)
        except TypeError as err:
            raise ConfigError(f"sink {spec.name}: {err}", file=spec.origin, key="sinks.options") from None
    try:
        return cls.from_settings(spec.settings, environ)
    except ConfigError as err:
        raise ConfigError(f"sink {spec.name}: {err.message}", file=err.file or spec.origin, key=err.key) from None
    except Exception as err:
        raise ConfigError(f"sink {spec.name}: cannot be made: {describe_error(err)}", file=spec.origin) from err


class SinkSet:
    """The configured sinks of a daemon, each with its spool and sender thread.

    Args:
        senders: one per sink.
        key: what they were built from (a reload with the same sinks keeps these).
    """

    def __init__(self, senders: Sequence[Sender], key: object) -> None:
        self.senders = list(senders)
        self.key = key
        self._started = False

    def __bool__(self) -> bool:
        return bool(self.senders)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on a sender's thread) whenever a sink's counts change."""
        for sender in self.senders:
            sender.on_change = callback

    def start(self) -> None:
        """Start every sender thread (only then is "sending to" logged: ``--check-config`` sends nothing)."""
        if not self._started:
            self._started = True
            for sender in self.senders:
                logger.info("sink %s: sending to %s", sender.name, sender.sink.describe())
                sender.start()

    def submit(self, body: bytes) -> None:
        """Hand one finished document (compact JSON) to every sink; returns at once."""
        for sender in self.senders:
            sender.submit(body)

    def stats(self) -> list[SinkStats]:
        """Each sink's counts, for ``/metrics``."""
        return [sender.stats for sender in self.senders]

    def stop(self, timeout: float = 2.0) -> None:
        """Stop every sender within about ``timeout`` seconds in all; what was handed over stays in the spools."""
        import time

        for sender in self.senders:
            sender.request_stop()
        deadline = time.monotonic() + timeout
        for sender in self.senders:
            sender.stop(max(0.0, deadline - time.monotonic()))


def _credentials_digest(spec: SinkSpec) -> str:
    """A hash of the sink's credentials file, so that a reload after rotating it makes a new sink."""
    import hashlib

    from dwellir_harvester.lib.files import read_bytes

    path = spec.settings.get("credentials_file")
    if not path:
        return ""
    try:
        data = read_bytes(path, 64 * 1024) or b""
    except (OSError, ValueError):
        data = b""
    return hashlib.sha256(data).hexdigest()


def build_sinks(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    on_change: Callable[[], None] = lambda: None,
) -> SinkSet:
    """The settings' sinks with their spools (``spool_dir/<name>/``) and senders, not started.

    Raises:
        ConfigError: a sink cannot be made (unknown type, bad credentials file, client not
            installed), or its spool directory cannot be created.
    """
    environ = os.environ if environ is None else environ
    key = (
        tuple((s.name, s.type, repr(sorted(s.settings.items())), _credentials_digest(s)) for s in settings.sinks),
        settings.spool_dir,
        settings.spool_max_documents,
        settings.spool_max_bytes,
    )
    if not settings.sinks:
        return SinkSet([], key)
    types = sink_types()
    senders = []
    for spec in settings.sinks:
        sink = build_sink(spec, environ, types)
        directory = os.path.join(settings.spool_dir, spec.name)
        try:
            spool = Spool(directory, settings.spool_max_documents, settings.spool_max_bytes)
        except OSError as err:
            raise ConfigError(
                f"sink {spec.name}: cannot use the spool directory {directory}: {err.strerror or err}", key="spool_dir"
            ) from None
        senders.append(
            Sender(
                spec.name,
                sink,
                spool,
                prefix=str(spec.settings.get("prefix", "")),
                retry_initial=float(spec.settings.get("retry_initial", 5.0)),
                retry_max=float(spec.settings.get("retry_max", max(300.0, spec.settings.get("retry_initial", 5.0)))),
                on_change=on_change,
            )
        )
    return SinkSet(senders, key)

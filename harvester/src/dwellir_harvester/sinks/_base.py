"""The sink interface: what a built-in or plugin sink implements."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar


class SinkError(Exception):
    """A send that failed (the endpoint is down, refused the credentials, answered 5xx, timed out).

    Its text is one line that never holds a credential; the document is kept in the spool and the
    send retried.
    """


class Sink(abc.ABC):
    """Where finished harvest documents go: one object store, one directory, one plugin's service.

    A sink stores ``body`` under ``key`` and may keep ``metadata`` beside it (the document's
    content hash, its collection time, the node). A plugin registers its subclass in the
    entry-point group ``dwellir_harvester.sinks`` under the type name that config files use
    (``type: my-sink``); its settings come from the sink's ``options`` mapping as constructor
    keyword arguments. ``send`` runs on the sink's own sender thread, never on a harvest's.
    """

    #: The type name of the built-in sinks (a plugin's is its entry point's name).
    TYPE: ClassVar[str] = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], environ: Mapping[str, str]) -> Sink:
        """Make the sink from its entry in ``sinks`` (a plugin: ``options`` as keyword arguments).

        Args:
            settings: the entry, checked against the config schema, paths resolved.
            environ: the environment (the built-in ``s3`` sink reads ``AWS_*`` from it).

        Returns:
            The sink.

        Raises:
            dwellir_harvester.config.ConfigError: a setting it cannot use.
        """
        return cls(**dict(settings.get("options", {})))

    @abc.abstractmethod
    def send(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        """Store ``body`` under ``key``, replacing what was there.

        Args:
            key: a relative, ``/``-separated key, e.g. ``prod/<model>/<unit>/latest.json``.
            body: the document, JSON.
            metadata: short ASCII strings to keep with the object, where the sink can.

        Raises:
            SinkError: it failed; the sender keeps the document and retries (any other exception is
                treated the same way).
        """

    def close(self) -> None:  # noqa: B027 - optional: most sinks hold nothing to close
        """Release connections; the sink is not used after this."""

    def describe(self) -> str:
        """Where this sink sends, for the log, without credentials."""
        return type(self).__name__

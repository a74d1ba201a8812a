"""The ``file`` sink: documents under a directory, as an object store would keep them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dwellir_harvester.lib.files import write_atomic

from ._base import Sink, SinkError


class FileSink(Sink):
    """Writes each object as a file ``<directory>/<key>``, atomically, mode 0644 (directories 0755).

    A local stand-in for object storage, and what ``dwellir-harvester fleet DIRECTORY`` reads.
    Metadata is not kept (the sender remembers the last content hash itself).

    Args:
        directory: where the keys are written (created when missing).
    """

    TYPE = "file"

    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], environ: Mapping[str, str]) -> FileSink:
        """The sink of a ``{type: file, directory: ...}`` entry."""
        return cls(settings["directory"])

    def send(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        """Write ``body`` to ``<directory>/<key>`` atomically."""
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise SinkError(f"refused key {key!r}: empty, '.' or '..' parts")
        path = os.path.join(self.directory, *parts)
        try:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            write_atomic(path, body, mode=0o644)
        except OSError as err:
            raise SinkError(f"cannot write {path}: {err.strerror or err}") from None

    def describe(self) -> str:
        """The directory."""
        return f"directory {self.directory}"

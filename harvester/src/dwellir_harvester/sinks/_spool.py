"""The spool: documents waiting to be sent, one file each, oldest first, bounded by count and bytes."""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from collections import deque
from typing import NamedTuple

from dwellir_harvester.lib.files import read_bytes, write_atomic

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<ns>\d{20})\.json$")
#: Larger spool files are not read back (a document is far smaller; something else put it there).
MAX_ENTRY_BYTES = 64 * 1024 * 1024


class SpoolEntry(NamedTuple):
    """One pending document: its file name, its size, and when it was spooled (Unix time)."""

    name: str
    size: int
    spooled_at: float


class Spool:
    """A directory of pending documents, one file per document, named so that listing order is send order.

    Files are written atomically with mode 0600 in a directory of mode 0700. Names are
    ``<nanoseconds>.json``, strictly increasing, so a restart keeps the order. When a new document
    would pass ``max_documents`` or ``max_bytes``, the oldest ones are dropped first (the caller
    counts and logs them). Thread-safe.

    Args:
        directory: the spool directory (created, with its parents, mode 0700).
        max_documents: the most documents kept.
        max_bytes: the most bytes kept.

    Raises:
        OSError: the directory cannot be created or listed.
    """

    def __init__(self, directory: str, max_documents: int, max_bytes: int) -> None:
        self.directory = directory
        self.max_documents, self.max_bytes = max_documents, max_bytes
        self._lock = threading.Lock()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(directory, 0o700)
        self._entries: deque[SpoolEntry] = deque()
        self._bytes = 0
        self._last_ns = 0
        self.rescan()

    def rescan(self) -> None:
        """List the directory again (another sender of the same sink may have spooled meanwhile).

        Raises:
            OSError: the directory cannot be listed.
        """
        entries = []
        for name in os.listdir(self.directory):
            match = _NAME.match(name)
            if not match:
                continue
            try:
                size = os.stat(os.path.join(self.directory, name)).st_size
            except OSError:
                continue
            entries.append(SpoolEntry(name, size, int(match["ns"]) / 1e9))
        with self._lock:
            self._entries = deque(sorted(entries))
            self._bytes = sum(e.size for e in self._entries)
            self._last_ns = max(self._last_ns, int(self._entries[-1].name[:20]) if self._entries else 0)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        """The bytes the pending documents take."""
        return self._bytes

    def oldest_time(self) -> float | None:
        """When the oldest pending document was spooled (Unix time), None when there is none."""
        with self._lock:
            return self._entries[0].spooled_at if self._entries else None

    def push(self, body: bytes) -> list[SpoolEntry]:
        """Spool ``body`` as the newest document; returns the entries dropped to make room (oldest first).

        A document larger than ``max_bytes`` on its own is dropped itself (returned as the only entry).

        Raises:
            OSError: it could not be written (nothing was dropped then).
        """
        with self._lock:
            ns = max(time.time_ns(), self._last_ns + 1)
            entry = SpoolEntry(f"{ns:020d}.json", len(body), ns / 1e9)
            if len(body) > self.max_bytes:
                return [entry]
            write_atomic(os.path.join(self.directory, entry.name), body, mode=0o600)
            self._last_ns = ns
            self._entries.append(entry)
            self._bytes += entry.size
            dropped = []
            while len(self._entries) > self.max_documents or self._bytes > self.max_bytes:
                old = self._entries.popleft()
                self._bytes -= old.size
                self._unlink(old.name)
                dropped.append(old)
            return dropped

    def oldest(self) -> tuple[SpoolEntry, bytes | None] | None:
        """The oldest pending document and its bytes (None when it cannot be read); None when the spool is empty."""
        with self._lock:
            if not self._entries:
                return None
            entry = self._entries[0]
        try:
            return entry, read_bytes(os.path.join(self.directory, entry.name), MAX_ENTRY_BYTES)
        except (OSError, ValueError) as err:
            logger.warning("cannot read spooled %s: %s", entry.name, err)
            return entry, None

    def remove(self, entry: SpoolEntry) -> None:
        """Remove ``entry`` (sent, or unreadable)."""
        with self._lock:
            if self._entries and self._entries[0] == entry:
                self._entries.popleft()
            else:
                try:
                    self._entries.remove(entry)
                except ValueError:  # dropped meanwhile to make room (it was being sent): already counted out
                    return
            self._bytes -= entry.size
            self._unlink(entry.name)

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(os.path.join(self.directory, name))
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("cannot remove spooled %s: %s", name, err.strerror or err)

"""One sender thread per sink: it spools each document, then drains the spool in order, with backoff."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dwellir_harvester.lib.files import read_bytes, write_atomic
from dwellir_harvester.lib.limits import describe_error, one_line
from dwellir_harvester.lib.redact import redact_text

from ._base import Sink, SinkError
from ._keys import content_hash, history_key, latest_key, node_name
from ._spool import Spool, SpoolEntry

logger = logging.getLogger(__name__)

#: Documents handed over but not yet spooled, per sink (the sender spools them within one loop).
MAX_INCOMING = 64
_STATE = ".last-sent"  # the content hash of the last document delivered: no new history object for the same one


@dataclass
class SinkStats:
    """What ``/metrics`` shows of one sink."""

    name: str
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    spooled: int = 0
    oldest_spooled: float | None = None
    last_success: float | None = None


class Sender:
    """Sends the documents given to ``submit`` through ``sink``, in order, never losing one silently.

    Every document is first spooled (a file in the sink's spool directory, written by a spooler
    thread, so that a send that hangs never leaves documents in memory only), then sent by the
    sender thread, then removed:
    a restart or a failed send keeps it, and the spool drains oldest first. A failed send is
    retried after ``retry_initial`` seconds, doubling each time up to ``retry_max``, each wait
    jittered (between half and all of it). A document whose content hash equals the last one
    delivered only replaces ``latest.json``; any other also gets its history object.

    Args:
        name: the sink's name.
        sink: the sink.
        spool: its spool.
        prefix: the key prefix.
        retry_initial: seconds before the first retry.
        retry_max: the longest wait between retries.
        on_change: called (on the sender's thread) after every attempt and every spooled document.
    """

    def __init__(
        self,
        name: str,
        sink: Sink,
        spool: Spool,
        prefix: str = "",
        retry_initial: float = 5.0,
        retry_max: float = 300.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.name, self.sink, self.spool, self.prefix = name, sink, spool, prefix
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.on_change = on_change
        self.stats = SinkStats(name)
        self._incoming: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._failures = 0
        self._next_try = 0.0
        self._last_error: str | None = None
        self._state = os.path.join(spool.directory, _STATE)
        self._last_hash = self._read_state()
        self._spooling = threading.Event()
        self._spool_lock = threading.Lock()  # one mover at a time: the order of hand-over is the order spooled
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        # Spooling has a thread of its own, so that a send that hangs never keeps a document in memory only.
        self._spooler = threading.Thread(target=self._run_spooler, name=f"spool-{name}", daemon=True)
        self._refresh()

    def start(self) -> None:
        """Start the sender thread (it drains what an earlier run left in the spool first)."""
        try:
            self.spool.rescan()  # a sender this one replaces may have spooled since the spool was opened
        except OSError as err:
            logger.error("sink %s: cannot list the spool %s: %s", self.name, self.spool.directory, err.strerror or err)
        self._refresh()
        if len(self.spool):
            logger.info("sink %s: %d document(s) left in the spool; sending them first", self.name, len(self.spool))
        self._spooler.start()
        self._thread.start()

    def submit(self, body: bytes) -> None:
        """Hand over one document (compact JSON); returns at once, never blocks on the sink."""
        with self._lock:
            self._incoming.append(body)
            while len(self._incoming) > MAX_INCOMING:  # the disk cannot keep up: the spool's rule, in memory
                self._incoming.popleft()
                self.stats.dropped += 1
                logger.warning("sink %s: dropped the oldest pending document (the spool cannot keep up)", self.name)
        if self._stopping:  # handed over while a reload swapped the sinks: spooled here, sent by the next sender
            self._spool_incoming()
        self._spooling.set()

    def request_stop(self) -> None:
        """Tell the thread to stop after its current attempt (``stop`` waits for it)."""
        self._stopping = True
        self._wake.set()
        self._spooling.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread; a document handed over but not yet spooled is spooled here."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in (self._spooler, self._thread):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._spool_incoming()
        self.sink.close()

    # --- the thread --------------------------------------------------------------------------

    def _run_spooler(self) -> None:
        while not self._stopping:
            self._spooling.wait()
            self._spooling.clear()
            try:
                self._spool_incoming()
            except Exception:  # never let the thread die
                logger.exception("sink %s: unexpected error in the spooler", self.name)
            self._wake.set()

    def _run(self) -> None:
        while True:
            try:
                if self._stopping:
                    return
                now = time.monotonic()
                if not len(self.spool):
                    self._wait(None)
                elif now < self._next_try:
                    self._wait(self._next_try - now)
                else:
                    self._attempt()
            except Exception:  # never let the thread die: the next document would wait forever
                logger.exception("sink %s: unexpected error in the sender", self.name)
                self._wait(self.retry_max)

    def _wait(self, timeout: float | None) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def _spool_incoming(self) -> None:
        with self._spool_lock:
            self._spool_incoming_locked()

    def _spool_incoming_locked(self) -> None:
        while True:
            with self._lock:
                if not self._incoming:
                    return
                body = self._incoming.popleft()
            try:
                dropped = self.spool.push(body)
            except OSError as err:
                self.stats.dropped += 1
                logger.error("sink %s: cannot spool a document (dropped): %s", self.name, err.strerror or err)
                dropped = []
            for entry in dropped:
                self.stats.dropped += 1
                logger.warning(
                    "sink %s: spool full (%d documents, %d bytes at most): dropped the document spooled at %s",
                    self.name,
                    self.spool.max_documents,
                    self.spool.max_bytes,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.spooled_at)),
                )
            self._refresh()

    def _attempt(self) -> None:
        found = self.spool.oldest()
        if found is None:
            return
        entry, body = found
        document = _parse(body)
        if document is None:
            self.spool.remove(entry)
            self.stats.dropped += 1
            logger.warning("sink %s: dropped spooled %s: not a harvest document", self.name, entry.name)
            self._refresh()
            return
        try:
            self._send(entry, body or b"", document)
        except Exception as err:  # noqa: BLE001 - a plugin sink raises what it raises
            self._failed(err)
            return
        self.spool.remove(entry)
        self.stats.sent += 1
        self.stats.last_success = time.time()
        if self._failures:
            logger.info("sink %s: delivering again after %d failed attempt(s)", self.name, self._failures)
        self._failures, self._next_try, self._last_error = 0, 0.0, None
        self._refresh()

    def _send(self, entry: SpoolEntry, body: bytes, document: dict[str, object]) -> None:
        node = node_name(document)
        harvester = document.get("harvester")
        stamp = harvester.get("collection_time") if isinstance(harvester, dict) else None
        digest = content_hash(document)
        metadata = {"harvest-sha256": digest, "collection-time": _ascii(stamp), "node": node}
        if digest != self._last_hash:
            self.sink.send(history_key(self.prefix, node, stamp or entry.name[:-5]), body, metadata)
        self.sink.send(latest_key(self.prefix, node), body, metadata)
        if digest != self._last_hash:
            self._last_hash = digest
            try:
                write_atomic(self._state, digest.encode() + b"\n", mode=0o600)
            except OSError as err:
                logger.debug("sink %s: cannot record the last hash: %s", self.name, err)

    def _failed(self, err: BaseException) -> None:
        self._failures += 1
        self.stats.failed += 1
        delay = min(self.retry_max, self.retry_initial * 2 ** min(self._failures - 1, 60))
        delay = delay / 2 + random.uniform(0, delay / 2)
        self._next_try = time.monotonic() + delay
        text = str(err) if isinstance(err, SinkError) else describe_error(err)
        text = one_line(redact_text(text), 500)
        if text != self._last_error:  # one line per kind of failure, not one per retry
            logger.error(
                "sink %s: send failed, %d document(s) kept in the spool, retrying in %.1f s: %s",
                self.name,
                len(self.spool),
                delay,
                text,
            )
            self._last_error = text
        else:
            logger.debug("sink %s: still failing (attempt %d): %s", self.name, self._failures, text)
        self._refresh()

    def _refresh(self) -> None:
        self.stats.spooled = len(self.spool)
        self.stats.oldest_spooled = self.spool.oldest_time()
        try:
            self.on_change()
        except Exception:
            logger.debug("sink %s: on_change failed", self.name, exc_info=True)

    def _read_state(self) -> str | None:
        try:
            raw = read_bytes(self._state, 1024)
        except (OSError, ValueError):
            return None
        return raw.decode("ascii", "replace").strip() if raw else None


def _parse(body: bytes | None) -> dict[str, object] | None:
    if body is None:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) and isinstance(document.get("harvester"), dict) else None


def _ascii(value: object) -> str:
    return one_line(str(value or ""), 100).encode("ascii", "replace").decode()

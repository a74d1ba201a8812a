"""The protocol between a harvester and its collector workers: versioned JSON lines over a socket.

Version ``1.0``. Each message is one JSON object on one line (UTF-8, at most ``MAX_LINE`` bytes)
with a ``type``. A peer ignores the fields it does not know, so a minor version may add fields; a
different major version is refused at once, with a message naming both versions.

Worker → parent, first: ``{"type": "hello", "protocol": [1, 0], "sdk": "<version>", "pid": n}``.

Parent → worker, and what comes back:

- ``{"type": "discover", "paths": [...], "entry_points": bool, "builtin_distribution": str|null,
  "skip": {where: reason}, "only": [where...] (optional, 1.1)}`` → ``{"type": "importing", "where":
  ...}`` before each plugin import (with ``only``, of those sources alone),
  then ``{"type": "discovered", "specs": [spec...], "problems": [{"where", "problem"}...]}``. A
  ``spec`` is ``{"name", "namespace", "source", "version", "collector_type", "timeout",
  "parameters": [[name, kind, required]...]}`` (``kind``: an ``inspect.Parameter`` kind name).
- ``{"type": "run", "id": n, "validate": bool, "requests": [{"key", "source", "name", "options",
  "timeout"}...]}`` → ``{"type": "entry", "id": n, "key": ..., "entry": {meta, data}}`` for each
  collector as soon as it finishes or times out, then ``{"type": "done", "id": n, "stragglers":
  [key...]}`` (the collectors still running past their timeout: the parent replaces the worker).
- ``{"type": "settings", "memory_mb": n|null, "nice": n, "log_level": ...}`` (1.2) → nothing: the
  limits and log level of a worker started before they were known.
- ``{"type": "exit"}`` → the worker exits.

At any time the worker may send ``{"type": "log", "level": n, "name": ..., "message": ...}`` (a log
record for the parent to emit) and ``{"type": "error", "message": ...}`` (a request it could not
serve; the parent fails what it asked for with that message).
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from .limits import one_line

#: This side's protocol version: ``(major, minor)``.
PROTOCOL = (1, 2)
#: The longest message accepted, in bytes; an entry larger than this is failed by the worker.
MAX_LINE = 32 * 1024 * 1024
#: The largest entry (its JSON) a worker sends; a larger one becomes a failed entry.
MAX_ENTRY = 16 * 1024 * 1024


class ProtocolError(Exception):
    """A message that breaks the protocol (not JSON, too long, a wrong version, a missing field)."""


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line of compact JSON."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message on ``line``; ``ProtocolError`` when it is not one."""
    if len(line) > MAX_LINE:
        raise ProtocolError(f"a message longer than {MAX_LINE} bytes")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"a message that is not JSON ({one_line(err, 120)})") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a message without a type")
    return message


def check_hello(message: dict[str, Any], sdk: str) -> None:
    """Raise ``ProtocolError`` unless ``message`` is a hello of a compatible protocol version."""
    if message.get("type") != "hello":
        raise ProtocolError(f"expected hello, got {one_line(message.get('type'), 40)!r}")
    version = message.get("protocol")
    theirs = message.get("sdk")
    if not (isinstance(version, list) and len(version) == 2 and all(isinstance(v, int) for v in version)):
        raise ProtocolError("the worker's hello names no protocol version")
    if version[0] != PROTOCOL[0]:
        raise ProtocolError(
            f"the worker speaks protocol {version[0]}.{version[1]} (dwellir-harvester-lib {one_line(theirs, 40)}), "
            f"this harvester speaks {PROTOCOL[0]}.{PROTOCOL[1]} (dwellir-harvester-lib {sdk}): "
            "install matching major versions"
        )


class Channel:
    """Messages over a connected stream socket: ``send`` from any thread, ``receive`` from one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._scanned = 0
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        """Send one message (whole, even from several threads at once)."""
        data = encode(message)
        with self._lock:
            self.sock.sendall(data)

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Return the next message, or None when the peer closed the connection.

        Raises:
            TimeoutError: no complete message arrived within ``timeout`` seconds (the channel stays usable).
            ProtocolError: the peer sent something that is not a message.
        """
        import select

        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                self._scanned = 0
                return decode(line)
            self._scanned = len(self._buffer)
            if self._scanned > MAX_LINE:
                raise ProtocolError(f"a message longer than {MAX_LINE} bytes")
            if timeout is not None and not select.select([self.sock], [], [], max(0.0, timeout))[0]:
                raise TimeoutError("no message")
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self._buffer += chunk

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

"""The HTTP side of the daemon: one event-loop thread that writes prebuilt responses from memory.

The daemon serves three small read-only endpoints, so the server is a minimal HTTP/1.1 server on
asyncio's protocol API rather than a thread per connection: parsing a request is finding the end of
its header block, and answering it is one write of bytes that were built once per harvest. An idle
or slow client costs one entry in a set, never a thread, so it cannot block anyone; connections are
capped and dropped after an idle timeout, headers are capped in size, and a request with a body is
answered and the connection closed (nothing here reads bodies).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from ._auth import Authenticator

logger = logging.getLogger(__name__)

ENDPOINTS = ("/metadata", "/healthz", "/metrics")
ALLOW = "GET, HEAD"
MAX_CONNECTIONS = 512
IDLE_TIMEOUT = 30.0
MAX_HEADER_BYTES = 64 * 1024
BACKLOG = 1024
SERVER = "dwellir-harvester"


class Response:
    """A complete response, built once and served many times: the head is prebuilt bytes."""

    __slots__ = ("body", "content_type", "etag", "head", "not_modified", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        etag: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status, self.body, self.content_type, self.etag = status, body, content_type, etag
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
        fields += [("ETag", etag)] if etag else []
        self.head = _head(status, [*fields, *extra])
        self.not_modified = _head(304, [("ETag", etag), ("Cache-Control", "no-store")]) if etag else None


def _head(status: int, fields: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Server: {SERVER}"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def json_response(status: int, payload: Any, *extra: tuple[str, str]) -> Response:
    return Response(status, json.dumps(payload).encode() + b"\n", extra=tuple(extra))


HEALTHZ = Response(200, b"ok\n", "text/plain; charset=utf-8")
NOT_FOUND = json_response(404, {"error": "not found", "endpoints": list(ENDPOINTS)})
NOT_ALLOWED = json_response(405, {"error": "method not allowed", "allow": ALLOW}, ("Allow", ALLOW))
UNAUTHORIZED = json_response(
    401,
    {"error": "unauthorized", "detail": "send a valid token as 'Authorization: Bearer <token>' or 'X-Auth-Token'"},
    ("WWW-Authenticate", 'Bearer realm="dwellir-harvester"'),
)
BAD_REQUEST = json_response(400, {"error": "bad request"})
TOO_LARGE = json_response(431, {"error": "request header fields too large"})
BUSY = json_response(503, {"error": "too many connections"}, ("Retry-After", "1"))


class Published:
    """What the server serves; the daemon replaces the responses, the server only reads them."""

    def __init__(self) -> None:
        self.metadata = json_response(503, {"error": "no harvest has completed yet"}, ("Retry-After", "5"))
        self.metrics = Response(200, b"", "text/plain; version=0.0.4; charset=utf-8")
        self.auth = Authenticator(())


class _Headers:
    """Request headers by lowercase name; ``get`` is case-insensitive like ``email.message``."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    def get(self, name: str, /) -> str | None:
        return self.fields.get(name.lower())


class _Date:
    """The ``Date`` header line, formatted at most once a second."""

    second = -1
    line = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.line = second, f"Date: {formatdate(second, usegmt=True)}\r\n".encode()
        return cls.line


_KEEP = b"\r\n"
_CLOSE = b"Connection: close\r\n\r\n"


def _split_head(buffer: bytearray) -> tuple[bytes, int] | None:
    """The header block at the start of ``buffer`` and its length with the blank line, if complete."""
    end = buffer.find(b"\r\n\r\n")
    bare = buffer.find(b"\n\n")  # tolerate clients that end lines with LF only
    if bare != -1 and (end == -1 or bare < end):
        return bytes(buffer[:bare]), bare + 2
    if end == -1:
        return None
    return bytes(buffer[:end]), end + 4


def _parse(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split() if lines else []
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        fields[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], fields


class _Connection(asyncio.Protocol):
    def __init__(self, server: HarvesterHTTPServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.last_active = time.monotonic()
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        if len(self.server.connections) >= MAX_CONNECTIONS:
            transport.write(BUSY.head + _Date.now() + _CLOSE + BUSY.body)
            transport.close()
            return
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def pause_writing(self) -> None:  # a client that does not read its answers stops being read too
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            found = _split_head(self.buffer)
            if found is None:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._send(TOO_LARGE, head_only=False, keep_alive=False)
                return
            head, length = found
            del self.buffer[:length]
            if not head.strip():
                continue  # stray blank lines between requests
            self._handle(head)

    def _handle(self, head: bytes) -> None:
        request = _parse(head) if len(head) <= MAX_HEADER_BYTES else None
        if request is None:
            self._send(TOO_LARGE if len(head) > MAX_HEADER_BYTES else BAD_REQUEST, head_only=False, keep_alive=False)
            return
        method, target, version, fields = request
        connection = fields.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if fields.get("transfer-encoding") or fields.get("content-length", "0").strip() not in ("", "0"):
            keep_alive = False  # bodies are never read: answer, then close
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            self._send(NOT_ALLOWED, head_only=False, keep_alive=keep_alive)
            return
        path = urlsplit(target).path
        published = self.server.published
        if path == "/healthz":
            response = HEALTHZ
        elif path not in ENDPOINTS:
            response = NOT_FOUND
        else:
            verdict = published.auth.check(_Headers(fields))
            if not verdict.allowed:
                label = f" (label {verdict.label})" if verdict.label else ""
                logger.warning("refused %s %s from %s: %s%s", method, path, self.peer, verdict.reason, label)
                response = UNAUTHORIZED
            else:
                response = published.metadata if path == "/metadata" else published.metrics
                if verdict.label and logger.isEnabledFor(logging.DEBUG):
                    logger.debug("%s %s by %s", method, path, verdict.label)
                etag = response.etag
                if etag and response.not_modified and etag in fields.get("if-none-match", ""):
                    assert self.transport is not None
                    self.transport.write(response.not_modified + _Date.now() + (_KEEP if keep_alive else _CLOSE))
                    if not keep_alive:
                        self.transport.close()
                    return
        self._send(response, head_only=head_only, keep_alive=keep_alive)

    def _send(self, response: Response, head_only: bool, keep_alive: bool) -> None:
        assert self.transport is not None
        ending = _KEEP if keep_alive else _CLOSE
        self.transport.write(response.head + _Date.now() + ending + (b"" if head_only else response.body))
        if not keep_alive:
            self.transport.close()


class HarvesterHTTPServer:
    """Binds at construction (so a port in use fails at once); ``serve_forever`` runs the loop.

    ``shutdown`` (from another thread) stops serving and closes every connection; ``server_close``
    releases the listening socket.
    """

    def __init__(self, host: str, port: int, published: Published) -> None:
        self.published = published
        self.connections: set[_Connection] = set()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.socket = sock
        self.server_address: tuple[Any, ...] = sock.getsockname()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = threading.Event()
        self._done = threading.Event()

    def serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(loop.create_server(lambda: _Connection(self), sock=self.socket))
            sweeper = loop.create_task(self._sweep())
            if not self._stopped.is_set():
                loop.run_forever()
            sweeper.cancel()
            server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            loop.close()
            self._done.set()

    async def _sweep(self) -> None:
        """Drop connections idle for longer than ``IDLE_TIMEOUT``."""
        while True:
            await asyncio.sleep(1.0)
            cutoff = time.monotonic() - IDLE_TIMEOUT
            for connection in [c for c in self.connections if c.last_active < cutoff]:
                if connection.transport is not None:
                    connection.transport.close()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving (from any thread) and wait until every connection is closed."""
        self._stopped.set()
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # the loop closed in between
            return
        self._done.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()

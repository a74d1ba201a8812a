"""The HTTP side of the daemon: one event-loop thread, requests parsed by llhttp, prebuilt responses.

The daemon serves three small read-only endpoints, so the server is a minimal HTTP/1.1 server on
asyncio's protocol API rather than a framework: requests are framed and parsed by ``httptools``
(llhttp, the parser of Node.js and of uvicorn), and answering one is a single write of bytes built
once per harvest.

What keeps one client from starving another (the numbers are ``Limits``):

- connections are capped; at the cap a new connection evicts the one that made progress least
  recently, so a flood of idle or slow sockets cannot lock out a fresh client;
- a request head must arrive in full within ``head_timeout`` and fit in ``max_head_bytes``; only a
  complete request resets the ``idle_timeout`` of a kept-alive connection, never a stray byte;
- a client that does not read its answers stops being read: requests are parsed in small slices
  and no further ones are answered while the transport's output is over its high-water mark, so
  one connection buffers at most about one answer beyond it; a connection whose output does not
  drain is aborted at its deadline (an evicted or timed-out connection is aborted, never closed
  gracefully, which would wait for the client forever);
- framing that two parsers could read differently is refused with 400 and a close: anything
  llhttp rejects in strict mode (bare CR or LF line ends, NUL and other control bytes in a field,
  obs-fold, duplicate ``Content-Length``, ``Transfer-Encoding`` with ``Content-Length``), any
  ``Transfer-Encoding`` at all (nothing here takes a body), a missing or repeated ``Host`` in
  HTTP/1.1, and more than one credential field (``Authorization`` and ``X-Auth-Token`` together
  count as two). A request with a body is answered, then the connection is closed unread.

Refused requests are logged one by one only for the first few of every ``log_interval``; the rest
go into one summary line per interval (counts by reason and client), and every refusal and
dropped connection is counted in ``/metrics``. No part of a credential field is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httptools

from dwellir_harvester.lib.limits import describe_error

from ._auth import REFUSALS, Authenticator
from ._limits import Limits

logger = logging.getLogger(__name__)

ENDPOINTS = ("/metadata", "/healthz", "/metrics")
ALLOW = "GET, HEAD"
BACKLOG = 1024
SERVER = "dwellir-harvester"
READ_SIZE = 64 * 1024  # one read from a socket, into a buffer shared by every connection
FEED_SLICE = 4 * 1024  # parsed at a time, so that answering stops soon after the client stops reading
SEND_BUFFER = 64 * 1024  # the kernel's send buffer per connection (Linux doubles it), instead of autotuning to MBs
LARGE_BODY = 64 * 1024  # a body this large is written apart from its head instead of copied after it
LINGER = 2.0  # seconds a closing connection's input is read and dropped, so the answer is not lost to a reset
LOG_BURST = 5  # refusals logged one by one per log interval before the rest go into its summary
TALLY_KEYS = 200  # distinct (reason, client) pairs counted per log interval; more are summed as "others"

#: Why the server dropped a connection; the ``reason`` label of ``dwellir_harvester_http_dropped_connections``.
DROPS = {
    "evicted": "evicted at the connection cap",
    "head_timeout": "request head not complete in time",
    "idle_timeout": "idle",
    "write_stalled": "answers not read in time",
    "bad_request": "bad request",
}


class Response:
    """A complete response, built once and served many times: the head is prebuilt bytes."""

    __slots__ = ("body", "content_type", "etag", "etag_token", "head", "not_modified", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        etag: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status, self.body, self.content_type, self.etag = status, body, content_type, etag
        self.etag_token = etag.encode("latin-1") if etag else None
        fields = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
        fields += [("ETag", etag)] if etag else []
        self.head = _head(status, [*fields, *extra])
        self.not_modified = _head(304, [("ETag", etag), ("Cache-Control", "no-store")]) if etag else None


def _head(status: int, fields: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Server: {SERVER}"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def json_response(status: int, payload: Any, *extra: tuple[str, str]) -> Response:
    """A response with a JSON body (and extra header fields)."""
    return Response(status, json.dumps(payload).encode() + b"\n", extra=tuple(extra))


def _bad(detail: str) -> Response:
    return json_response(400, {"error": "bad request", "detail": detail})


HEALTHZ = Response(200, b"ok\n", "text/plain; charset=utf-8")
NOT_FOUND = json_response(404, {"error": "not found", "endpoints": list(ENDPOINTS)})
NOT_ALLOWED = json_response(405, {"error": "method not allowed", "allow": ALLOW}, ("Allow", ALLOW))
NOT_IMPLEMENTED = json_response(501, {"error": "method not implemented", "allow": ALLOW}, ("Allow", ALLOW))
VERSION_NOT_SUPPORTED = json_response(505, {"error": "HTTP version not supported", "supported": "HTTP/1.0, HTTP/1.1"})
UNAUTHORIZED = json_response(
    401,
    {"error": "unauthorized", "detail": "send a valid token as 'Authorization: Bearer <token>' or 'X-Auth-Token'"},
    ("WWW-Authenticate", 'Bearer realm="dwellir-harvester"'),
)
BAD_REQUEST = _bad("the request is not valid HTTP/1.1")
BAD_HOST = _bad("an HTTP/1.1 request needs exactly one Host field")
BAD_CREDENTIALS = _bad("send one credential: one Authorization or one X-Auth-Token field")
BAD_TRANSFER_ENCODING = _bad("Transfer-Encoding is not accepted: these endpoints take no body")
TOO_LARGE = json_response(431, {"error": "request header fields too large"})


class Published:
    """What the server serves; the daemon replaces the responses, the server only reads them."""

    def __init__(self) -> None:
        self.metadata = json_response(503, {"error": "no harvest has completed yet"}, ("Retry-After", "5"))
        self.metrics = Response(200, b"", "text/plain; version=0.0.4; charset=utf-8")
        self.auth = Authenticator(())


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


_NOTHING = memoryview(b"")
_KEEP = b"\r\n"
_KEEP_1_0 = b"Connection: keep-alive\r\n\r\n"
_CLOSE = b"Connection: close\r\n\r\n"


class _StopReadingError(Exception):
    """Raised from a parser callback: nothing more is read on this connection."""


class _Answer(NamedTuple):
    """An answer waiting for the client to read the ones before it."""

    response: Response
    head_only: bool
    ending: bytes  # the last header line and the blank line: keep-alive or close
    not_modified: bool


class _Tally:
    """Refused requests and dropped connections: counts for /metrics, and a rate-limited log."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pending: Counter[tuple[str, str]] = Counter()  # (kind, reason), not yet in /metrics
        self.window: Counter[tuple[str, str, str]] = Counter()  # (kind, reason, client), this interval
        self.logged = 0
        self.logged_drops: set[str] = set()
        self.unlogged = 0
        self.window_start = time.monotonic()

    def refused(self, reason: str, method: str, path: str, peer: str, label: str | None) -> None:
        self._count("refused", reason, peer)
        if self.logged < LOG_BURST:
            self.logged += 1
            shown = f"{REFUSALS.get(reason, reason)}" + (f" (label {label})" if label else "")
            logger.warning("refused %s %s from %s: %s", method, path, peer, shown)
        else:
            self.unlogged += 1

    def dropped(self, reason: str, peer: str) -> None:
        self._count("dropped", reason, peer)
        if reason == "idle_timeout":  # the normal end of a kept-alive connection: counted, not worth a line
            return
        if reason in self.logged_drops:
            self.unlogged += 1
        else:  # the first of its kind in this interval: at once, so an operator sees it start
            self.logged_drops.add(reason)
            logger.warning(
                "dropped a connection from %s: %s (more of these: in a summary every %g s)",
                peer,
                DROPS.get(reason, reason),
                self.interval,
            )

    def _count(self, kind: str, reason: str, peer: str) -> None:
        self.pending[kind, reason] += 1
        key = (kind, reason, peer)
        if key not in self.window and len(self.window) >= TALLY_KEYS:
            key = (kind, reason, "other clients")
        self.window[key] += 1

    def take(self) -> dict[tuple[str, str], int]:
        """The counts since the last call (for /metrics)."""
        taken = dict(self.pending)
        self.pending.clear()
        return taken

    def summarize(self, now: float, force: bool = False) -> None:
        """Log the interval's summary line when it is over (or ``force``) and something went unlogged."""
        if not force and now - self.window_start < self.interval:
            return
        if self.unlogged:
            parts = []
            for kind, names in (("refused", REFUSALS), ("dropped", DROPS)):
                counts = [(n, reason, peer) for (k, reason, peer), n in self.window.items() if k == kind]
                if not counts:
                    continue
                counts.sort(reverse=True)
                shown = [f"{names.get(reason, reason)}: {n} from {peer}" for n, reason, peer in counts[:5]]
                if len(counts) > 5:
                    rest = sum(c[0] for c in counts[5:])
                    shown.append(f"{rest} more from {len(counts) - 5} other reason/client pairs")
                noun = "request(s)" if kind == "refused" else "connection(s)"
                parts.append(f"{kind} {sum(c[0] for c in counts)} {noun} ({'; '.join(shown)})")
            logger.warning("in the last %.0f s: %s", now - self.window_start, ", ".join(parts))
        self.window.clear()
        self.logged_drops.clear()
        self.logged = self.unlogged = 0
        self.window_start = now


class _Connection(asyncio.BufferedProtocol):
    """One client connection: parses its requests and answers them in order."""

    def __init__(self, server: HarvesterHTTPServer) -> None:
        self.server = server
        self.limits = server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.deadline = time.monotonic() + self.limits.head_timeout  # its first request head is due by then
        self.requests = 0
        self.pending = _NOTHING  # input not parsed yet: a burst, or kept while the client does not read
        self.scheduled = False  # a _step of the pending input is due on the loop
        self.queue: deque[_Answer] = deque()
        self.writing_paused = False
        self.reading_paused = False
        self.closing = False
        self.lingering = False
        self.aborted = False
        self.eof = False
        self.in_head = False
        self.head_bytes = 0
        self.unsent = 0  # the transport's output at the last sweep: less now means the client reads
        self._new_request()

    def _new_request(self) -> None:
        self.url = b""
        self.authorization: bytes | None = None
        self.x_auth_token: bytes | None = None
        self.if_none_match: bytes | None = None
        self.hosts = 0
        self.has_body = False
        self.problem: Response | None = None

    # --- asyncio --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a fixed kernel buffer: a client that does not read cannot make it grow to megabytes
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        self.server.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.pop(self, None)
        self.queue.clear()
        self.pending = _NOTHING
        self.closing = True

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.closing:
            return  # the last answer is written; what the client still sends is dropped (see _write)
        data = self.server.read_buffer[:nbytes]
        if nbytes > FEED_SLICE:  # a burst: parsed a slice per turn of the loop (see _step)
            self.pending = memoryview(bytes(data))
            self._pause_reading()
            self._step()
            return
        if not self._parse(data) and not self.closing:
            self._pause_reading()  # the client is not reading its answers: stop reading its requests

    def eof_received(self) -> bool | None:
        self.eof = True
        if (self.queue or self.pending) and not self.lingering:
            return True  # answer what was asked first; _resume closes once everything is out
        return None  # the transport closes once its output is flushed

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._resume()

    # --- parser callbacks (llhttp) --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self.head_bytes = 0
        if self.requests:  # the first request's head is due head_timeout after the connection began
            self.deadline = time.monotonic() + self.limits.head_timeout
        self._new_request()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in (b"authorization", b"x-auth-token"):
            if self.authorization is not None or self.x_auth_token is not None:
                self.problem = self.problem or BAD_CREDENTIALS
            if name == b"authorization":
                self.authorization = value
            else:
                self.x_auth_token = value
        elif name == b"host":
            self.hosts += 1
        elif name == b"if-none-match":
            self.if_none_match = value
        elif name == b"content-length":
            self.has_body = value.strip(b" \t").lstrip(b"0") != b""  # llhttp checked it is digits
        elif name == b"transfer-encoding":
            self.problem = self.problem or BAD_TRANSFER_ENCODING

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            self._refuse(BAD_REQUEST if version == "0.9" else VERSION_NOT_SUPPORTED)
        if self.problem is not None:
            self._refuse(self.problem)
        if self.hosts > 1 or (self.hosts == 0 and version == "1.1"):
            self._refuse(BAD_HOST)
        keep_alive = parser.should_keep_alive() and not self.has_body and not parser.should_upgrade()
        method = parser.get_method()
        if method not in (b"GET", b"HEAD"):
            self._answer(NOT_ALLOWED, False, keep_alive)
            return
        path = self.url.partition(b"?")[0] if self.url[:1] == b"/" else _path_of(self.url)
        if path == b"/healthz":
            self._answer(HEALTHZ, method == b"HEAD", keep_alive)
            return
        if path not in (b"/metadata", b"/metrics"):
            self._answer(NOT_FOUND, method == b"HEAD", keep_alive)
            return
        published = self.server.published
        verdict = published.auth.check(self.authorization, self.x_auth_token)
        if not verdict.allowed:
            self.server.tally.refused(verdict.reason, method.decode(), path.decode("latin-1"), self.peer, verdict.label)
            self._answer(UNAUTHORIZED, method == b"HEAD", keep_alive)
            return
        if verdict.label and logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s by %s", method.decode(), path.decode(), verdict.label)
        response = published.metadata if path == b"/metadata" else published.metrics
        token = response.etag_token
        not_modified = token is not None and self.if_none_match is not None and token in self.if_none_match
        self._answer(response, method == b"HEAD", keep_alive, not_modified)

    def on_message_complete(self) -> None:
        pass  # answered when the head was complete: nothing here reads bodies

    # --- answering ------------------------------------------------------------------------------

    def _refuse(self, response: Response) -> None:
        self.server.tally.dropped("bad_request", self.peer)
        self._answer(response, False, False)

    def _answer(self, response: Response, head_only: bool, keep_alive: bool, not_modified: bool = False) -> None:
        self.requests += 1
        ending = (_KEEP if self.parser.get_http_version() == "1.1" else _KEEP_1_0) if keep_alive else _CLOSE
        if self.writing_paused or self.queue:
            self.queue.append(_Answer(response, head_only, ending, not_modified))
        else:
            self._write(response, head_only, ending, not_modified)
        if not keep_alive:
            self.closing = True
            raise _StopReadingError  # nothing after this request is read

    def _write(self, response: Response, head_only: bool, ending: bytes, not_modified: bool) -> None:
        transport = self.transport
        assert transport is not None
        if not_modified:
            assert response.not_modified is not None
            transport.write(response.not_modified + _Date.now() + ending)
        elif head_only:
            transport.write(response.head + _Date.now() + ending)
        elif len(response.body) < LARGE_BODY:
            transport.write(response.head + _Date.now() + ending + response.body)
        else:
            transport.write(response.head + _Date.now() + ending)
            transport.write(response.body)
        now = time.monotonic()
        self.deadline = now + self.limits.idle_timeout
        self.server.touch(self)  # it made progress: the last to be evicted now
        if ending is _CLOSE:
            # Half-close, then read and drop the rest of the client's input for a moment: closing a
            # socket with unread input sends a reset, which can destroy the answer before the client
            # reads it (the "lingering close" of Apache and nginx).
            self.closing = self.lingering = True
            self.deadline = now + min(LINGER, self.limits.head_timeout)
            if self.eof:  # the client has nothing more to send
                transport.close()
                return
            try:
                transport.write_eof()
            except OSError:  # the client is gone already (it read the answer and reset)
                self.aborted = True
                transport.abort()
                return
            if self.reading_paused:
                self.reading_paused = False
                transport.resume_reading()

    # --- input ----------------------------------------------------------------------------------

    def _step(self) -> None:
        """Parse the next slice of the pending input; the one after it waits for a later turn of the loop.

        A burst of pipelined requests is answered a slice at a time, so one client's burst never
        holds up the others for long; and no slice is parsed while the client is not reading.
        """
        self.scheduled = False
        if self.closing or self.writing_paused or not self.pending:
            return
        chunk, self.pending = self.pending[:FEED_SLICE], self.pending[FEED_SLICE:]
        if not self._parse(chunk):
            return
        if self.pending:
            self.scheduled = True
            self.loop.call_soon(self._step)
        else:
            self._input_done()

    def _parse(self, chunk: memoryview) -> bool:
        """Feed ``chunk`` to the parser; whether to go on (not closing, and the client reads its answers)."""
        try:
            self.parser.feed_data(chunk)
        except httptools.HttpParserCallbackError as err:
            if not isinstance(err.__context__, _StopReadingError):
                logger.error("HTTP request from %s: %s", self.peer, describe_error(err.__context__ or err))
                self.abort("bad_request")
            return False
        except httptools.HttpParserInvalidMethodError:
            self._error(NOT_IMPLEMENTED)
            return False
        except httptools.HttpParserUpgrade:
            return False  # answered, closing: see keep_alive in on_headers_complete
        except httptools.HttpParserError:
            self._error(BAD_REQUEST)
            return False
        if self.in_head:
            self.head_bytes += len(chunk)  # counts a little more than the head: never less
            if self.head_bytes > self.limits.max_head_bytes:
                self._error(TOO_LARGE)
                return False
        return not self.closing and not self.writing_paused

    def _error(self, response: Response) -> None:
        if not self.closing:
            with contextlib.suppress(_StopReadingError):
                self._refuse(response)

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _input_done(self) -> None:
        """Everything received is parsed and answered: read again (or close after the client's EOF)."""
        if self.transport is None or self.closing:
            return
        if self.eof:
            self.transport.close()
        elif self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def _resume(self) -> None:
        while self.queue and not self.writing_paused:
            self._write(*self.queue.popleft())
        if self.writing_paused or self.closing or self.scheduled:
            return
        if self.pending:
            self._step()
        else:
            self._input_done()

    def abort(self, reason: str) -> None:
        """Drop the connection at once, unsent output included; count it under ``reason``."""
        if self.aborted:
            return
        self.server.tally.dropped(reason, self.peer)
        self.aborted = self.closing = True
        self.queue.clear()
        self.pending = _NOTHING
        if self.transport is not None:
            self.transport.abort()

    def sweep(self, now: float) -> None:
        """Called a few times a second: extend the deadline while output drains, abort past it."""
        if self.transport is None or self.aborted:
            return
        if self.lingering and now >= self.deadline:
            self.aborted = True  # answered: not counted as dropped
            self.transport.abort()
            return
        unsent = self.transport.get_write_buffer_size()
        if unsent and unsent < self.unsent:
            self.deadline = max(self.deadline, now + self.limits.idle_timeout)
        self.unsent = unsent
        if now >= self.deadline:
            if unsent or self.queue:
                self.abort("write_stalled")
            elif self.in_head or not self.requests:
                self.abort("head_timeout")
            else:
                self.abort("idle_timeout")


def _path_of(target: bytes) -> bytes:
    """The path of an absolute-form target (``http://host/metadata``); anything else has none."""
    try:
        return urlsplit(target.decode("ascii")).path.encode()
    except (UnicodeDecodeError, ValueError):
        return b""


class HarvesterHTTPServer:
    """Binds at construction (so a port in use fails at once); ``serve_forever`` runs the loop.

    ``shutdown`` (from another thread) stops serving and aborts every connection; ``server_close``
    releases the listening socket. ``on_stats``, when set, is called on the loop's thread about once
    a second with the counts of refused requests and dropped connections since the last call,
    keyed by ``("refused" | "dropped", reason)``.
    """

    def __init__(self, host: str, port: int, published: Published, limits: Limits | None = None) -> None:
        self.published = published
        self.limits = limits or Limits()
        self.connections: dict[_Connection, None] = {}  # in order of progress: the least recent first
        self.read_buffer = memoryview(bytearray(READ_SIZE))
        self.tally = _Tally(self.limits.log_interval)
        self.on_stats: Callable[[Mapping[tuple[str, str], int]], None] | None = None
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

    def admit(self, connection: _Connection) -> None:
        """Take a new connection in; at the cap, evict the one that made progress least recently."""
        connections = self.connections
        while len(connections) >= self.limits.max_connections:
            oldest = next(iter(connections))
            del connections[oldest]
            oldest.abort("evicted")
        connections[connection] = None

    def touch(self, connection: _Connection) -> None:
        """Move ``connection`` to the end of the eviction order: it just made progress."""
        connections = self.connections
        if connections.pop(connection, False) is None:
            connections[connection] = None

    def serve_forever(self) -> None:
        """Serve until ``shutdown``; run on the thread that owns the event loop."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), sock=self.socket, backlog=BACKLOG)
            )
            sweeper = loop.create_task(self._sweep())
            if not self._stopped.is_set():
                loop.run_forever()
            sweeper.cancel()
            server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            loop.run_until_complete(asyncio.sleep(0))
            self._flush_stats(time.monotonic(), force=True)
        finally:
            loop.close()
            self._done.set()

    async def _sweep(self) -> None:
        """Enforce deadlines, and pass counts to ``on_stats`` and the log, a few times a second."""
        limits = self.limits
        tick = min(1.0, limits.head_timeout / 4, limits.idle_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for connection in list(self.connections):
                connection.sweep(now)
            self._flush_stats(now)

    def _flush_stats(self, now: float, force: bool = False) -> None:
        counts = self.tally.take()
        if counts and self.on_stats is not None:
            try:
                self.on_stats(counts)
            except Exception:
                logger.exception("cannot update the HTTP counters in /metrics")
        self.tally.summarize(now, force)

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
        """Release the listening socket."""
        self.socket.close()

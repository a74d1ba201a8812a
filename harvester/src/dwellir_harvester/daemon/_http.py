"""The HTTP side of the daemon: a threaded server that serves prebuilt responses from memory.

Every connection gets its own thread (bounded, with an idle timeout), so one slow or idle client never
blocks another, and serving never waits for a harvest: the harvest thread swaps in new prebuilt
responses when it is done.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ._auth import Authenticator

logger = logging.getLogger(__name__)

ENDPOINTS = ("/metadata", "/healthz", "/metrics")
PROTECTED = ("/metadata", "/metrics")
ALLOW = "GET, HEAD"
MAX_CONNECTIONS = 512
IDLE_TIMEOUT = 30.0


class Response(NamedTuple):
    """A complete response, built once and served many times."""

    status: int
    body: bytes
    content_type: str = "application/json"
    etag: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


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


class Published:
    """What the server serves; the daemon replaces the responses, the handlers only read them."""

    def __init__(self) -> None:
        self.metadata = json_response(503, {"error": "no harvest has completed yet"}, ("Retry-After", "5"))
        self.metrics = Response(200, b"", "text/plain; version=0.0.4; charset=utf-8")
        self.auth = Authenticator(())


class _Handler(BaseHTTPRequestHandler):
    server: HarvesterHTTPServer
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server_version = "dwellir-harvester"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # any other method: 405, not http.server's 501
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._send(NOT_ALLOWED, head=False)

    def _serve(self, head: bool) -> None:
        path = urlsplit(self.path).path
        published = self.server.published
        if path == "/healthz":
            self._send(HEALTHZ, head)
            return
        if path not in ENDPOINTS:
            self._send(NOT_FOUND, head)
            return
        verdict = published.auth.check(self.headers)
        if not verdict.allowed:
            label = f" (label {verdict.label})" if verdict.label else ""
            logger.warning(
                "refused %s %s from %s: %s%s", self.command, path, self.client_address[0], verdict.reason, label
            )
            self._send(UNAUTHORIZED, head)
            return
        response = published.metadata if path == "/metadata" else published.metrics
        if response.etag and response.etag in (self.headers.get("If-None-Match") or ""):
            self._send(Response(304, b"", response.content_type, response.etag), head=True)
        else:
            self._send(response, head)
        if verdict.label:
            logger.debug("%s %s by %s", self.command, path, verdict.label)

    def _send(self, response: Response, head: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        if response.etag:
            self.send_header("ETag", response.etag)
        for name, value in response.extra:
            self.send_header(name, value)
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.client_address[0], format % args)


class HarvesterHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with daemon threads, a cap on open connections, and IPv6 when asked."""

    daemon_threads = True
    block_on_close = False  # stopping never waits for idle keep-alive clients

    def __init__(self, host: str, port: int, published: Published) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.published = published
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("error while serving %s", client_address, exc_info=True)

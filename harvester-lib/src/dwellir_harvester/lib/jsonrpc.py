"""A small JSON-RPC 2.0 client over HTTP for collectors, on the standard library only.

::

    from dwellir_harvester.lib.jsonrpc import jsonrpc_call, JsonRpcError

    chain = jsonrpc_call("http://127.0.0.1:9944", "system_chain", timeout=2)

Every failure raises a ``JsonRpcError`` (a ``CollectorFailedError``, so a collector that lets it
propagate gets status ``failed`` with a message naming the URL and the method):

- ``JsonRpcTransportError``: the node could not be reached or did not answer in time;
- ``JsonRpcHTTPError``: an HTTP status other than 200 (``.status``);
- ``JsonRpcProtocolError``: a body that is not a JSON-RPC response;
- ``JsonRpcRemoteError``: the node answered with an error object (``.code``, ``.message``, ``.data``).

Proxies from the environment are not used: collectors talk to their node directly. Credentials in
the URL (``http://user:secret@host``) are sent as HTTP basic auth and never appear in messages.
``timeout`` bounds the whole call, so a node that trickles its answer cannot hold a collector.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ._errors import CollectorFailedError
from .limits import one_line
from .redact import redact_url

if TYPE_CHECKING:
    import socket

__all__ = [
    "JsonRpcError",
    "JsonRpcHTTPError",
    "JsonRpcProtocolError",
    "JsonRpcRemoteError",
    "JsonRpcTransportError",
    "check_http_url",
    "jsonrpc_call",
]

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: How much of a node's own text (an error message, a body) an exception's message quotes.
MAX_QUOTED = 200


class JsonRpcError(CollectorFailedError):
    """A JSON-RPC call that did not return a result; ``url`` has any credentials removed."""

    def __init__(self, url: str, method: str, reason: str) -> None:
        self.url, self.method, self.reason = url, method, reason
        super().__init__(f"{method} at {url}: {reason}")


class JsonRpcTransportError(JsonRpcError):
    """The connection failed, was refused, or timed out."""


class JsonRpcHTTPError(JsonRpcError):
    """The server answered with an HTTP status other than 200."""

    def __init__(self, url: str, method: str, status: int, body: str) -> None:
        self.status, self.body = status, body
        snippet = one_line(body[: 4 * MAX_QUOTED], MAX_QUOTED)
        super().__init__(url, method, f"HTTP {status}" + (f": {snippet}" if snippet else ""))


class JsonRpcProtocolError(JsonRpcError):
    """The body is not a JSON-RPC 2.0 response."""


class JsonRpcRemoteError(JsonRpcError):
    """The node returned a JSON-RPC error object."""

    def __init__(self, url: str, method: str, code: Any, message: Any, data: Any = None) -> None:
        self.code, self.message, self.data = code, message, data
        shown_code = code if isinstance(code, int) and not isinstance(code, bool) else one_line(repr(code), 40)
        super().__init__(url, method, f"error {shown_code}: {one_line(message, MAX_QUOTED)}")


def check_http_url(url: object, what: str = "url") -> str:
    """Return ``url`` when it is an http:// or https:// URL with a host (and a numeric port, if any).

    Args:
        url: the value to check.
        what: its name in the error (``rpc_url``, ``rpc-url``).

    Returns:
        The URL, unchanged.

    Raises:
        TypeError: it is not a string.
        ValueError: it is not such a URL; the message never shows the URL's credentials.
    """
    if not isinstance(url, str):
        raise TypeError(f"{what} must be a string, not {type(url).__name__}")
    shown = one_line(repr(redact_url(url)), MAX_QUOTED)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as err:
        raise ValueError(f"{what} {shown} is not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host, not {shown}")
    return url


def _target(url: str) -> tuple[Any, str, dict[str, str]]:
    """``(split URL without credentials, URL safe to print, auth headers)``; ``ValueError`` if not http(s)."""
    parts = urlsplit(check_http_url(url))
    headers = {}
    if parts.username is not None:
        token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return parts, urlunsplit(parts), headers


class _DeadlineReader(io.RawIOBase):
    """Reads a socket giving up at one deadline for the whole answer, head included.

    ``http.client`` reads the status line and each header line with separate socket reads, each
    under the socket's timeout: a server that trickles one byte per second would hold the call
    forever. Every read here gets only the time that is left. It reads through the socket's own
    ``SocketIO``, so the socket stays open while the response is read after ``http.client`` has
    closed its connection (``Connection: close``).
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline
        self._raw = sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        self._sock.settimeout(remaining)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """The connection's socket as ``http.client`` sees it: the response is read through a ``_DeadlineReader``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _post(parts: Any, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``body`` and read the whole answer, giving up when ``timeout`` seconds have passed in all."""
    import http.client

    deadline = time.monotonic() + timeout
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(max(0.001, deadline - time.monotonic()))  # sendall: one bound for all of it
        conn.sock = _DeadlineSocket(conn.sock, deadline)
        conn.request("POST", urlunsplit(("", "", parts.path or "/", parts.query, "")), body=body, headers=headers)
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read1(65536)
            if not chunk:
                if response.length:  # the node closed before sending all it announced
                    raise http.client.IncompleteRead(b"".join(chunks), response.length)
                return response.status, b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                return response.status, b"".join(chunks)
    finally:
        conn.close()


def jsonrpc_call(
    url: str,
    method: str,
    params: list[Any] | dict[str, Any] | None = None,
    timeout: float = 5.0,
    *,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST one JSON-RPC 2.0 request and return its ``result``; raise a ``JsonRpcError`` otherwise.

    ``timeout`` bounds the whole call (connecting, sending, and reading the answer), not each read.
    A URL that is not http(s) raises ``ValueError`` (with any credentials hidden).
    """
    import http.client

    parts, shown, auth = _target(url)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": [] if params is None else params})
    request_headers = {"Content-Type": "application/json", "Accept": "application/json", **auth, **(headers or {})}
    try:
        status, raw = _post(parts, body.encode(), request_headers, timeout)
    except (OSError, http.client.HTTPException, ValueError) as err:  # refused, timed out, not HTTP, cut short
        raise JsonRpcTransportError(shown, method, _reason(err, timeout)) from err
    if len(raw) > MAX_RESPONSE_BYTES:
        raise JsonRpcProtocolError(shown, method, f"response larger than {MAX_RESPONSE_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    except RecursionError:
        raise JsonRpcProtocolError(shown, method, "the response is nested too deeply to read") from None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        raise JsonRpcRemoteError(shown, method, error.get("code"), error.get("message"), error.get("data"))
    if status != 200:
        raise JsonRpcHTTPError(shown, method, status, text)
    if not isinstance(answer, dict):
        snippet = one_line(repr(text[: 4 * MAX_QUOTED]), MAX_QUOTED)
        raise JsonRpcProtocolError(shown, method, f"the body is not a JSON-RPC response: {snippet}")
    if "result" not in answer:
        raise JsonRpcProtocolError(shown, method, "the response has neither 'result' nor 'error'")
    return answer["result"]


def _reason(err: BaseException, timeout: float) -> str:
    import http.client

    if isinstance(err, TimeoutError) or "timed out" in str(err):
        return f"no answer within {timeout:g} s"
    if isinstance(err, http.client.HTTPException):
        return f"not a valid HTTP answer ({type(err).__name__}: {one_line(str(err), 120)})"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return one_line(str(err), MAX_QUOTED) or type(err).__name__

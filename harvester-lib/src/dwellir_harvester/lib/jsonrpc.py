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
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ._errors import CollectorFailedError

__all__ = [
    "JsonRpcError",
    "JsonRpcHTTPError",
    "JsonRpcProtocolError",
    "JsonRpcRemoteError",
    "JsonRpcTransportError",
    "jsonrpc_call",
]

MAX_RESPONSE_BYTES = 32 * 1024 * 1024


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
        snippet = body.strip().replace("\n", " ")[:200]
        super().__init__(url, method, f"HTTP {status}" + (f": {snippet}" if snippet else ""))


class JsonRpcProtocolError(JsonRpcError):
    """The body is not a JSON-RPC 2.0 response."""


class JsonRpcRemoteError(JsonRpcError):
    """The node returned a JSON-RPC error object."""

    def __init__(self, url: str, method: str, code: Any, message: Any, data: Any = None) -> None:
        self.code, self.message, self.data = code, message, data
        super().__init__(url, method, f"error {code}: {message}")


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``(url without credentials, auth headers)``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.username is None:
        return url, {}
    host = parts.netloc.rsplit("@", 1)[1]
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
    return clean, {"Authorization": f"Basic {token}"}


def jsonrpc_call(
    url: str,
    method: str,
    params: list[Any] | dict[str, Any] | None = None,
    timeout: float = 5.0,
    *,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST one JSON-RPC 2.0 request and return its ``result``; raise a ``JsonRpcError`` otherwise."""
    import urllib.error
    import urllib.request

    shown, auth = _split_credentials(url)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": [] if params is None else params})
    request = urllib.request.Request(
        shown,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json", **auth, **(headers or {})},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.URLError as err:
        raise JsonRpcTransportError(shown, method, _reason(err.reason, timeout)) from err
    except (OSError, ValueError) as err:  # timeout, reset mid-response, malformed status line, ...
        raise JsonRpcTransportError(shown, method, _reason(err, timeout)) from err
    if len(raw) > MAX_RESPONSE_BYTES:
        raise JsonRpcProtocolError(shown, method, f"response larger than {MAX_RESPONSE_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        raise JsonRpcRemoteError(shown, method, error.get("code"), error.get("message"), error.get("data"))
    if status != 200:
        raise JsonRpcHTTPError(shown, method, status, text)
    if not isinstance(answer, dict):
        snippet = text.strip().replace("\n", " ")[:120]
        raise JsonRpcProtocolError(shown, method, f"the body is not a JSON-RPC response: {snippet!r}")
    if "result" not in answer:
        raise JsonRpcProtocolError(shown, method, "the response has neither 'result' nor 'error'")
    return answer["result"]


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__

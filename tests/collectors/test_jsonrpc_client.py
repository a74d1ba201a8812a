"""The SDK's JSON-RPC client, ``dwellir_harvester.lib.jsonrpc.jsonrpc_call``, against real servers."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable

import pytest

from dwellir_harvester.lib import CollectorFailedError
from dwellir_harvester.lib.jsonrpc import (
    JsonRpcError,
    JsonRpcHTTPError,
    JsonRpcProtocolError,
    JsonRpcRemoteError,
    JsonRpcTransportError,
    jsonrpc_call,
)


def test_returns_the_result_and_sends_a_json_rpc_2_request(polkadot_node):
    assert jsonrpc_call(polkadot_node.url, "system_chain") == "Polkadot"
    assert jsonrpc_call(polkadot_node.url, "system_health") == {
        "peers": 40,
        "isSyncing": False,
        "shouldHavePeers": True,
    }

    [first, second] = polkadot_node.requests
    assert first.body == {"jsonrpc": "2.0", "id": first.body["id"], "method": "system_chain", "params": []}
    assert first.headers["Content-Type"] == "application/json"
    assert second.method == "system_health"


def test_params_are_sent_as_given(polkadot_node):
    jsonrpc_call(polkadot_node.url, "chain_getBlockHash", [0])
    jsonrpc_call(polkadot_node.url, "chain_getBlockHash", {"number": 0})

    assert [r.params for r in polkadot_node.requests] == [[0], {"number": 0}]


def test_a_null_result_is_a_result(rpc_server):
    rpc_server.on("chain_getHeader", None)

    assert jsonrpc_call(rpc_server.url, "chain_getHeader") is None


def test_extra_headers_are_sent(rpc_server):
    rpc_server.on("ping", "pong")

    jsonrpc_call(rpc_server.url, "ping", headers={"X-Api-Key": "k"})

    assert rpc_server.requests[0].headers["X-Api-Key"] == "k"


def test_an_error_object_raises_a_remote_error_with_its_fields(rpc_server):
    rpc_server.on("eth_foo", error={"code": -32601, "message": "Method not found", "data": "eth_foo"})

    with pytest.raises(JsonRpcRemoteError) as caught:
        jsonrpc_call(rpc_server.url, "eth_foo")

    err = caught.value
    assert (err.code, err.message, err.data) == (-32601, "Method not found", "eth_foo")
    assert (err.url, err.method) == (rpc_server.url, "eth_foo")
    assert str(err) == f"eth_foo at {rpc_server.url}: error -32601: Method not found"


def test_an_http_error_status_raises_an_http_error(rpc_server):
    rpc_server.on("system_name", status=500, body="Internal Server Error\n")

    with pytest.raises(JsonRpcHTTPError) as caught:
        jsonrpc_call(rpc_server.url, "system_name")

    err = caught.value
    assert err.status == 500
    assert err.body == "Internal Server Error\n"
    assert err.url == rpc_server.url and err.method == "system_name"
    assert str(err) == f"system_name at {rpc_server.url}: HTTP 500: Internal Server Error"


def test_an_http_error_with_an_empty_body(rpc_server):
    rpc_server.on("system_name", status=401, body="")

    with pytest.raises(JsonRpcHTTPError, match=r"^system_name at http://127\.0\.0\.1:\d+: HTTP 401$"):
        jsonrpc_call(rpc_server.url, "system_name")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html><body>It works!</body></html>", "the body is not a JSON-RPC response: '<html><body>It works!"),
        ('["a", "batch"]', "the body is not a JSON-RPC response"),
        ('{"jsonrpc": "2.0", "id": 1}', "the response has neither 'result' nor 'error'"),
        ("", "the body is not a JSON-RPC response: ''"),
    ],
)
def test_a_body_that_is_not_a_json_rpc_response_raises_a_protocol_error(rpc_server, body, reason):
    rpc_server.on("system_name", body=body)

    with pytest.raises(JsonRpcProtocolError) as caught:
        jsonrpc_call(rpc_server.url, "system_name")

    assert str(caught.value).startswith(f"system_name at {rpc_server.url}: {reason}")


def test_connection_refused_raises_a_transport_error(closed_port):
    url = f"http://127.0.0.1:{closed_port}"

    with pytest.raises(JsonRpcTransportError) as caught:
        jsonrpc_call(url, "system_name", timeout=2)

    assert str(caught.value) == f"system_name at {url}: connection refused"


def test_a_server_that_never_answers_gives_up_at_the_timeout(rpc_server):
    rpc_server.on("system_name", hang=True)
    started = time.monotonic()

    with pytest.raises(JsonRpcTransportError) as caught:
        jsonrpc_call(rpc_server.url, "system_name", timeout=0.3)

    assert 0.25 <= time.monotonic() - started < 1.0
    assert str(caught.value) == f"system_name at {rpc_server.url}: no answer within 0.3 s"


def test_every_error_is_a_collector_failed_error():
    for cls in (JsonRpcTransportError, JsonRpcHTTPError, JsonRpcProtocolError, JsonRpcRemoteError):
        assert issubclass(cls, JsonRpcError)
        assert issubclass(cls, CollectorFailedError)


def test_credentials_in_the_url_are_sent_as_basic_auth(rpc_server):
    rpc_server.on("system_name", "Parity Polkadot")
    url = rpc_server.url.replace("http://", "http://harvester:p%40ss%3Aw0rd@")

    assert jsonrpc_call(url, "system_name") == "Parity Polkadot"

    expected = base64.b64encode(b"harvester:p@ss:w0rd").decode()
    assert rpc_server.requests[0].headers["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize("setup", ["remote", "http", "protocol", "transport"])
def test_credentials_never_appear_in_error_messages(rpc_server, closed_port, setup):
    rpc_server.on(
        "m",
        **{
            "remote": {"error": {"code": 1, "message": "no"}},
            "http": {"status": 503, "body": "busy"},
            "protocol": {"body": "nope"},
            "transport": {},
        }[setup],
    )
    base = f"http://127.0.0.1:{closed_port}" if setup == "transport" else rpc_server.url
    url = base.replace("http://", "http://alice:S3cr3t@")

    with pytest.raises(JsonRpcError) as caught:
        jsonrpc_call(url, "m", timeout=2)

    err = caught.value
    assert err.url == base
    assert "S3cr3t" not in str(err) and "alice" not in str(err)
    assert "S3cr3t" not in repr(err.args)


def test_proxies_from_the_environment_are_not_used(rpc_server, closed_port, monkeypatch):
    proxy = f"http://127.0.0.1:{closed_port}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    rpc_server.on("system_name", "Parity Polkadot")

    assert jsonrpc_call(rpc_server.url, "system_name") == "Parity Polkadot"


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9944", "127.0.0.1:9944", "http://"])
def test_a_url_that_is_not_http_is_a_value_error(url):
    with pytest.raises(ValueError, match="must be an http:// or https:// URL with a host"):
        jsonrpc_call(url, "system_name")


# --- what the first version of the client got wrong ------------------------------------------------


def test_the_error_for_a_bad_url_never_shows_its_credentials():
    with pytest.raises(ValueError) as caught:
        jsonrpc_call("htp://alice:S3cr3t@127.0.0.1:9944", "system_name")

    assert "S3cr3t" not in str(caught.value)


def _send(payload: bytes) -> Callable[[socket.socket], None]:
    return lambda conn: conn.sendall(payload)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(_send(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n"), id="not-http-at-all"),
        pytest.param(_send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"), id="header-line-too-long"),
        pytest.param(_send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), id="broken-chunked-body"),
    ],
)
def test_a_server_that_does_not_speak_http_raises_a_json_rpc_error(raw_server, answer):
    url = raw_server(answer)

    with pytest.raises(JsonRpcError) as caught:
        jsonrpc_call(url, "system_name", timeout=2)

    assert url in str(caught.value)


def test_a_url_with_a_bad_port_is_a_value_error_or_a_json_rpc_error():
    with pytest.raises((ValueError, JsonRpcError)):
        jsonrpc_call("http://127.0.0.1:port/", "system_name")


def test_a_node_that_trickles_its_answer_still_gives_up_at_the_timeout(raw_server):
    body = b'{"jsonrpc":"2.0","id":1,"result":"Polkadot"}'

    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 4):
            time.sleep(0.1)
            conn.sendall(body[i : i + 4])

    url = raw_server(trickle)
    started = time.monotonic()
    try:
        jsonrpc_call(url, "system_chain", timeout=0.3)
    except JsonRpcTransportError:
        pass

    assert time.monotonic() - started < 0.8


def test_a_node_that_trickles_its_headers_gives_up_at_the_timeout(raw_server):
    """Each header line used to get a fresh socket timeout: a byte every 0.1 s held the call for ever."""

    def trickle_head(conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Slow-%d: v\r\n" % i for i in range(1000))
        for i in range(len(head)):
            time.sleep(0.05)
            conn.sendall(head[i : i + 1])

    url = raw_server(trickle_head)
    started = time.monotonic()
    with pytest.raises(JsonRpcTransportError) as caught:
        jsonrpc_call(url, "system_chain", timeout=0.5)

    assert time.monotonic() - started < 1.5
    assert "no answer within 0.5 s" in str(caught.value)


def test_a_huge_remote_error_message_with_control_characters_is_quoted_short_and_on_one_line(rpc_server):
    message = "bad\n\x1b[31mthing\x00 " + "x" * 10_000_000
    rpc_server.on("eth_foo", error={"code": {"nested": [1]}, "message": message})

    with pytest.raises(JsonRpcRemoteError) as caught:
        jsonrpc_call(rpc_server.url, "eth_foo", timeout=10)

    text = str(caught.value)
    assert len(text) < 400
    assert text.isprintable()
    assert "bad [31mthing" in text
    assert caught.value.message == message  # the caller can still read all of it


def test_a_huge_http_error_body_is_quoted_short(rpc_server):
    rpc_server.on("system_name", status=502, body="<html>\r\n" + "y" * 5_000_000)

    with pytest.raises(JsonRpcHTTPError) as caught:
        jsonrpc_call(rpc_server.url, "system_name", timeout=10)

    assert len(str(caught.value)) < 400 and str(caught.value).isprintable()


def test_a_response_nested_too_deeply_is_a_protocol_error_not_unreachable(rpc_server):
    rpc_server.on("system_health", body='{"jsonrpc": "2.0", "id": 1, "result": ' + "[" * 100_000 + "]" * 100_000 + "}")

    with pytest.raises(JsonRpcProtocolError) as caught:
        jsonrpc_call(rpc_server.url, "system_health", timeout=10)

    assert "nested too deeply" in str(caught.value)


def test_an_answer_delimited_by_closing_the_connection_is_read_whole(raw_server):
    body = b'{"jsonrpc":"2.0","id":1,"result":"Polkadot"}'
    url = raw_server(_send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body))

    assert jsonrpc_call(url, "system_chain", timeout=2) == "Polkadot"


def test_an_answer_shorter_than_its_content_length_is_refused(raw_server):
    body = b'{"jsonrpc":"2.0","id":1,"result":null}'
    url = raw_server(_send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) + 10) + body))

    with pytest.raises(JsonRpcTransportError):  # IncompleteRead, or a reset when the server closes first
        jsonrpc_call(url, "system_chain", timeout=2)

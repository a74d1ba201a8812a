"""The daemon's HTTP/1.1 server on the wire: keep-alive, pipelining, malformed and oversized requests."""

from __future__ import annotations

import socket
import time

import pytest

from .conftest import exchange, statuses


@pytest.fixture
def port(start_daemon):
    daemon = start_daemon("--collectors", "null")
    daemon.wait_document()
    return daemon.port


def test_keep_alive_and_pipelined_requests_on_one_connection(port):
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = exchange(port, get + get + b"HEAD /metadata HTTP/1.1\r\nHost: x\r\n\r\n" + last)
    assert statuses(reply) == [200, 200, 200, 200]
    assert reply.count(b"ok\n") == 2
    assert reply.rstrip().endswith(b"}")  # the last answer carries the document; HEAD carried none
    assert b"Connection: close" in reply


def test_http_1_0_closes_unless_asked_to_keep_alive(port):
    reply = exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert statuses(reply) == [200] and b"Connection: close" in reply
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = sock.recv(65536)
        sock.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = sock.recv(65536)
    assert statuses(first) == [200] and statuses(second) == [200]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", 501),
        (b"GET /healthz\r\n\r\n", 400),
        (b"GET /healthz SPDY/3\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"POST /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 405),
        (b"PUT /metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 405),
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 needs Host
        (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ],
)
def test_bad_requests_get_an_answer_and_the_connection_closes(port, raw, status):
    reply = exchange(port, raw)
    assert statuses(reply) == [status]
    assert b"Connection: close" in reply


def test_headers_that_never_end_are_cut_off(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(20):  # the server reads (and drops) what follows its answer for a moment: no reset
            sock.sendall(b"X-Filler: " + b"b" * 4000 + b"\r\n")
        reply = sock.recv(65536)
    assert statuses(reply) == [431]


def test_lf_only_line_ends_are_refused(port):
    # RFC 9112 lets a server accept a bare LF; llhttp in strict mode does not, and neither do we:
    # a front proxy that reads line ends differently is how requests get smuggled.
    assert statuses(exchange(port, b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n")) == [400]


def test_a_client_that_never_reads_does_not_stall_others(port):
    hog = socket.create_connection(("127.0.0.1", port))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        hog.sendall(b"GET /metadata HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)  # answers pile up unread
        started = time.monotonic()
        assert statuses(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == [200]
        assert time.monotonic() - started < 2
    finally:
        hog.close()


# --- framing: what a strict parser refuses, we refuse (400 and a close) ----------------------------

SMUGGLING = {
    "bare CR inside a value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 0\r\n\r\n",
    "NUL inside a value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "HTTP/1.9": b"GET /healthz HTTP/1.9\r\nHost: x\r\n\r\n",
    "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "space before the colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
    "duplicate Content-Length": b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    "Transfer-Encoding and Content-Length": b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "empty Transfer-Encoding": b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
    "chunked on a GET": b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked on a PUT": b"PUT /metadata HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    "two Host fields": b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
}


@pytest.mark.parametrize("raw", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_ambiguous_framing_is_refused_with_one_400_and_a_close(port, raw):
    reply = exchange(port, raw)
    assert statuses(reply) == [400], reply
    assert b"Connection: close" in reply


@pytest.mark.parametrize(
    ("separator", "status"),
    [(b"\x85", 200), (b"\x0b", 400), (b"\x0c", 400), (b"\x1c", 400), (b"\x1d", 400), (b"\x1e", 400)],
)
def test_a_byte_inside_a_value_never_starts_a_new_field(port, separator, status):
    # str.splitlines() used to split here, so "Content-Length: 0" ended the request and its body was
    # answered as a second request. A strict parser sees one request with a body that looks like one.
    body = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-A: a%bContent-Length: 0\r\n\r\n" % (
        len(body),
        separator,
    )
    reply = exchange(port, raw + body)
    # One answer, then a close: 200 where the byte is obs-text (allowed in a value), 400 for a control byte.
    assert statuses(reply) == [status], reply
    assert b"Connection: close" in reply


@pytest.fixture
def guarded(start_daemon):
    daemon = start_daemon("--collectors", "null", "--auth-token", "tok-smuggle-3b1f")
    daemon.wait_document(headers={"X-Auth-Token": "tok-smuggle-3b1f"})
    return daemon


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        (b"X-A: a\x85X-Auth-Token: tok-smuggle-3b1f\r\n", 401),  # one field whose value holds the token
        (b"X-A: a\rX-Auth-Token: tok-smuggle-3b1f\r\n", 400),
        (b"Authorization: Bearer nope\r\nAuthorization: Bearer tok-smuggle-3b1f\r\n", 400),
        (b"Authorization: Bearer tok-smuggle-3b1f\r\nAuthorization: Bearer nope\r\n", 400),
        (b"X-Auth-Token: nope\r\nX-Auth-Token: tok-smuggle-3b1f\r\n", 400),
        (b"X-Auth-Token: tok-smuggle-3b1f\r\nAuthorization: Bearer tok-smuggle-3b1f\r\n", 400),
        (b"Authorization: Basic nope\r\nX-Auth-Token: tok-smuggle-3b1f\r\n", 400),
    ],
)
def test_smuggled_and_duplicate_credentials_are_refused(guarded, fields, status):
    reply = exchange(guarded.port, b"GET /metadata HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n")
    assert statuses(reply) == [status], reply
    assert b"Connection: close" in reply


def test_absolute_form_targets_and_queries_reach_the_endpoint(port):
    reply = exchange(port, b"GET http://x/healthz?probe=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert statuses(reply) == [200] and reply.endswith(b"ok\n")

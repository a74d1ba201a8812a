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

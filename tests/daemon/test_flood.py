"""Clients that try to starve the others: idle floods, slowloris, pipelining without reading."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

from .conftest import exchange, healthz_within, statuses

SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "


def dropped(daemon, reason: str) -> float:
    return daemon.metrics().get(("dwellir_harvester_http_dropped_connections_total", (("reason", reason),)), 0)


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (what it sends before that is read and dropped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionError:
                return True
    return False


def trickle(sock: socket.socket, seconds: float) -> bool:
    """Send one byte of a header value every 0.1 s; True as soon as the server has closed the socket."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.send(b"a")
        except OSError:
            return True
        if closed_by_server(sock, 0.1):
            return True
    return False


def test_a_fresh_client_gets_healthz_during_an_idle_flood_and_a_slowloris(start_daemon, many_sockets):
    # The real daemon with its real limits (512 connections): 1,000 idle sockets, then 600 more that
    # send a request head a byte at a time. Each new client evicts the least recently active one.
    daemon = start_daemon("--collectors", "null")
    daemon.wait_document()
    port = daemon.port
    held: list[socket.socket] = []
    try:
        held += [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
        for _ in range(5):
            healthz_within(port, 1.0)
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(600)]
        held += slow
        for sock in slow:
            sock.sendall(SLOW_HEAD)
        for _ in range(3):  # every byte used to push the idle deadline back: now only a complete request does
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            for _ in range(3):
                healthz_within(port, 1.0)
    finally:
        for sock in held:
            sock.close()
    daemon.wait_for(lambda: dropped(daemon, "evicted") >= 1600 - 512, what="the evictions in /metrics")
    assert "evicted at the connection cap" in daemon.log  # one summary line, not one line per socket
    assert daemon.count("evicted") <= 3


def test_a_request_head_has_a_deadline_that_trickled_bytes_do_not_extend(start_daemon):
    daemon = start_daemon(limits={"head_timeout": 1.0, "idle_timeout": 30.0}, flags={"collectors": ["null"]})
    silent = socket.create_connection(("127.0.0.1", daemon.port))
    slow = socket.create_connection(("127.0.0.1", daemon.port))
    try:
        slow.sendall(SLOW_HEAD)
        assert trickle(slow, 6.0), "a head sent a byte at a time was never cut off"
        assert closed_by_server(silent, 1.0), "a connection that sent nothing was kept"
    finally:
        silent.close()
        slow.close()
    daemon.wait_for(lambda: dropped(daemon, "head_timeout") >= 2, what="the head timeouts in /metrics")


def test_only_complete_requests_keep_a_connection_alive(start_daemon):
    daemon = start_daemon(limits={"head_timeout": 1.0, "idle_timeout": 1.5}, flags={"collectors": ["null"]})
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    busy = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
    idle = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
    try:
        idle.sendall(request)
        assert statuses(idle.recv(65536)) == [200]
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # twice the idle timeout: a request every 0.5 s keeps it
            busy.sendall(request)
            assert statuses(busy.recv(65536)) == [200]
            time.sleep(0.5)  # the client's pace, not a synchronisation
        assert closed_by_server(idle, 3.0)
    finally:
        busy.close()
        idle.close()
    daemon.wait_for(lambda: dropped(daemon, "idle_timeout") >= 1, what="the idle timeout in /metrics")
    assert "idle" not in daemon.log  # the normal end of a kept-alive connection is counted, not logged


def test_at_the_cap_a_new_connection_evicts_the_least_recently_active(start_daemon):
    daemon = start_daemon(limits={"max_connections": 8, "head_timeout": 30.0}, flags={"collectors": ["null"]})
    port = daemon.port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(7)]
    active = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        active.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert statuses(active.recv(65536)) == [200]
        healthz_within(port, 1.0)  # the ninth connection: the oldest idle one goes
        assert closed_by_server(idle[0], 2.0)
        active.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the active one stays
        assert statuses(active.recv(65536)) == [200]
    finally:
        for sock in [*idle, active]:
            sock.close()


def test_pipelined_megabytes_are_answered_in_linear_time(start_daemon):
    daemon = start_daemon("--collectors", "null")
    daemon.wait_document()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    count = 2 * 1024 * 1024 // len(request)
    answers = [0]

    def read(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while answers[0] < count:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return
                answers[0] += chunk.count(b"ok\n")

    with socket.create_connection(("127.0.0.1", daemon.port), timeout=20) as sock:
        reader = threading.Thread(target=read, args=(sock,), daemon=True)
        reader.start()
        started = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(request * count,), daemon=True)
        sender.start()
        while reader.is_alive() and time.monotonic() - started < 20:
            healthz_within(daemon.port, 2.0)  # other clients are served meanwhile
            reader.join(0.2)
        took = time.monotonic() - started
        sender.join(5)
    assert answers[0] == count
    assert took < 10, f"{count} pipelined requests took {took:.1f} s"


def test_clients_that_never_read_their_answers_do_not_grow_the_daemon(start_daemon):
    daemon = start_daemon(limits={"head_timeout": 2.0, "idle_timeout": 2.0}, flags={"collectors": ["null"]})
    daemon.wait_document()
    before = daemon.rss_kib()
    pipelined = b"GET /metadata HTTP/1.1\r\nHost: x\r\n\r\n" * (64 * 1024 // 37)
    hogs = []
    try:
        for _ in range(120):  # each asks for ~4 MB of answers and reads none
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(2)
            sock.connect(("127.0.0.1", daemon.port))
            with contextlib.suppress(OSError):
                sock.sendall(pipelined)
            hogs.append(sock)
        peak = [daemon.rss_kib()]

        def all_dropped() -> bool:
            peak.append(daemon.rss_kib())
            return dropped(daemon, "write_stalled") >= 120

        healthz_within(daemon.port, 2.0)
        daemon.wait_for(all_dropped, what="the stalled connections to be aborted")
    finally:
        for sock in hogs:
            sock.close()
    growth_mib = (max(peak) - before) / 1024
    assert growth_mib < 48, f"the daemon grew by {growth_mib:.0f} MiB"
    assert statuses(exchange(daemon.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == [200]

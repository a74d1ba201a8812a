"""Fixtures for the built-in collectors: a real JSON-RPC node on loopback, a real node process.

``rpc_server`` is an HTTP server (stdlib ``ThreadingHTTPServer`` in a thread, on a free loopback
port) that answers JSON-RPC 2.0 POSTs, scriptable per method::

    rpc_server.script(POLKADOT)                       # realistic answers for many methods
    rpc_server.on("system_chain", error=METHOD_NOT_FOUND)
    rpc_server.on("chain_getHeader", status=500, body="Internal Server Error")
    rpc_server.on("system_health", body="<html>bad gateway</html>")
    rpc_server.on("system_name", hang=True)          # accept, read, never answer

Unscripted methods get ``{"code": -32601, "message": "Method not found"}``, as a real node answers.
Every request is recorded in ``rpc_server.requests``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import GENESIS

METHOD_NOT_FOUND = {"code": -32601, "message": "Method not found"}

#: A Polkadot mainnet node (polkadot 1.15.2) at block 22,678,316, fully synced, 40 peers.
POLKADOT: dict[str, Any] = {
    "system_name": "Parity Polkadot",
    "system_version": "1.15.2-2fe4a1e1e9f",
    "system_chain": "Polkadot",
    "chain_getBlockHash": GENESIS,
    "system_health": {"peers": 40, "isSyncing": False, "shouldHavePeers": True},
    "chain_getHeader": {
        "parentHash": "0x5d3ae3f6b1b4e0a0a7c3c9a6e8d3f6b0c2c1a9e7f4d2b8a6c5e3d1f0a9b8c7d6",
        "number": "0x15a0b2c",
        "stateRoot": "0x8f1e5a2b3c4d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
        "extrinsicsRoot": "0x0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "digest": {
            "logs": [
                "0x0642414245b50103a40000008a3f1e1100000000",
                "0x054241424501014a6e3b0c5d7e9f1a2b3c4d5e6f",
            ]
        },
    },
    "system_syncState": {"startingBlock": 22675120, "currentBlock": 22678316, "highestBlock": 22678316},
}

#: A Geth node on Ethereum mainnet at block 21,658,687, synced, 50 peers.
ETHEREUM: dict[str, Any] = {
    "web3_clientVersion": "Geth/v1.14.8-stable-a9523b64/linux-amd64/go1.22.6",
    "eth_chainId": "0x1",
    "net_version": "1",
    "eth_syncing": False,
    "eth_blockNumber": "0x14a7c3f",
    "net_peerCount": "0x32",
}


@dataclass
class Reply:
    """How the server answers one method."""

    result: Any = None
    error: dict[str, Any] | None = None
    status: int = 200
    body: str | None = None  # sent verbatim instead of a JSON-RPC response
    hang: bool = False


@dataclass
class Request:
    method: str
    params: Any
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class RpcServer:
    """A JSON-RPC node on a free loopback port; see the module docstring."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.requests: list[Request] = []
        self.released = threading.Event()  # set at shutdown: hanging handlers return
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # an idle keep-alive connection cannot hold a handler forever

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self._send(400, json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700}}))
                    return
                method = body.get("method", "")
                server.requests.append(Request(method, body.get("params"), dict(self.headers.items()), body))
                reply = server.replies.get(method, Reply(error=METHOD_NOT_FOUND))
                if reply.hang:
                    server.released.wait(30)
                    self.close_connection = True
                    return
                if reply.body is not None:
                    self._send(reply.status, reply.body, "text/html; charset=utf-8")
                    return
                answer: dict[str, Any] = {"jsonrpc": "2.0", "id": body.get("id")}
                if reply.error is not None:
                    answer["error"] = reply.error
                else:
                    answer["result"] = reply.result
                self._send(reply.status, json.dumps(answer))

            def _send(self, status: int, text: str, content_type: str = "application/json; charset=utf-8") -> None:
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:  # the client gave up already
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # server_close() joins the handlers: a clean stop

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up mid-answer is expected in these tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="rpc-server", daemon=True
        )

    def on(
        self,
        method: str,
        result: Any = None,
        *,
        error: dict[str, Any] | None = None,
        status: int = 200,
        body: str | None = None,
        hang: bool = False,
    ) -> None:
        self.replies[method] = Reply(result, error, status, body, hang)

    def script(self, results: dict[str, Any]) -> RpcServer:
        for method, result in results.items():
            self.on(method, result)
        return self

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def rpc_server() -> Iterator[RpcServer]:
    server = RpcServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def polkadot_node(rpc_server: RpcServer) -> RpcServer:
    return rpc_server.script(POLKADOT)


@pytest.fixture
def ethereum_node(rpc_server: RpcServer) -> RpcServer:
    return rpc_server.script(ETHEREUM)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NodeProcess:
    name: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[Any]:
    """Start a fake node: this Python, run through a symlink with a unique name, sleeping.

    ``start(*args)`` returns a ``NodeProcess``; its process name (what ``process_name`` matches)
    is the symlink's name. Every process started is killed at teardown.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> NodeProcess:
        name = f"hvnode{os.getpid() % 100000}{len(started)}"  # at most 15 characters, like /proc/*/comm
        link = tmp_path / name
        link.symlink_to(sys.executable)
        proc = subprocess.Popen(
            [str(link), "-c", "import time; time.sleep(30)", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            time.sleep(0.01)
        return NodeProcess(name, proc)

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def node_scripts() -> dict[str, dict[str, Any]]:
    """The realistic answers by collector name: ``{"substrate": POLKADOT, "evm": ETHEREUM}`` (copies)."""
    return {"substrate": json.loads(json.dumps(POLKADOT)), "evm": json.loads(json.dumps(ETHEREUM))}


def request_complete(received: bytes) -> bool:
    """Whether a whole HTTP request (head and body) is in ``received``."""
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def read_request(conn: socket.socket) -> bytes:
    """Read one whole request: a server that closes with unread bytes resets the connection (RST)."""
    received = b""
    while not request_complete(received):
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """A one-connection TCP server that answers with whatever ``answer(conn)`` sends: ``start(answer)`` → URL."""
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def start(answer: Callable[[socket.socket], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    read_request(conn)
                    answer(conn)
                except OSError:
                    pass  # the client gave up

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener, thread in zip(sockets, threads, strict=True):
        if thread.is_alive():  # still in accept(): a connection wakes it up
            try:
                socket.create_connection(listener.getsockname(), timeout=1).close()
            except OSError:
                pass
        thread.join(5)
        listener.close()

"""What the tests of every folder share: guards that keep the real machine alone, and a node on loopback.

The subordinate charm's test folder (``charms/dwellir-harvester/tests``) puts the repository root
on ``sys.path`` and imports the fixtures here into its ``conftest.py`` (a fixture imported into a
conftest is that conftest's fixture)::

    from tests.support import charm_environment, never_touch_the_real_machine, restore_logging

The example charms' tests (``examples/*/tests``) need nothing from here: they pass in a copy of
their folder.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

#: The real machine's paths of the harvester; no test may write them, whoever runs the suite.
REAL_PATHS = (
    "/etc/dwellir-harvester",
    "/var/lib/dwellir-harvester",
    "/etc/systemd/system/dwellir-harvester.service",
)
#: What a harvester reads from its environment; no test inherits them from its caller.
HARVESTER_VARIABLES = ("HARVESTER_COLLECTOR_PATHS", "HARVESTER_CONFIG", "DAEMON_AUTH_TOKENS", "DAEMON_AUTH_TOKEN_FILE")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo what ops does when it runs a charm: the root logger at DEBUG, its ``sys.excepthook``."""
    root = logging.getLogger()
    level, handlers, excepthook = root.level, list(root.handlers), sys.excepthook
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    sys.excepthook = excepthook


@pytest.fixture(autouse=True)
def charm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits plugin paths, a config file or tokens from its caller."""
    for name in HARVESTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _listing() -> dict[str, tuple[int, int]]:
    found = {top: (0, 0) for top in REAL_PATHS if os.path.exists(top)}  # an empty directory made counts too
    for top in REAL_PATHS:
        for dirpath, _dirs, names in os.walk(top):
            for name in names:
                st = os.stat(os.path.join(dirpath, name))
                found[os.path.join(dirpath, name)] = (st.st_ino, st.st_mtime_ns)
        if os.path.isfile(top):
            st = os.stat(top)
            found[top] = (st.st_ino, st.st_mtime_ns)
    return found


@pytest.fixture(autouse=True)
def never_touch_the_real_machine() -> Iterator[None]:
    """The tests run as any user, root included: none of them may write the machine's real paths."""
    before = _listing()
    yield
    assert _listing() == before, "a test wrote the machine's real harvester files"


GENESIS = "0x91b171bb158e2d3848fa23a9f1c25182fb8e20313b2c1eb49219da7a70ce90c3"
#: What the Polkadot node answers, by JSON-RPC method.
NODE_ANSWERS: dict[str, Any] = {
    "system_name": "Parity Polkadot",
    "system_version": "1.16.2-4bd2b73c0d3",
    "system_chain": "Polkadot",
    "chain_getBlockHash": GENESIS,
    "system_health": {"peers": 42, "isSyncing": False, "shouldHavePeers": True},
}


class PolkadotNode:
    """A Polkadot node's JSON-RPC API on loopback (a context manager).

    ``answers`` maps a method to its result (an unknown method gets JSON-RPC's "method not found");
    ``calls`` lists the methods asked, in order; ``url`` is where it listens.
    """

    def __init__(self) -> None:
        self.answers = dict(NODE_ANSWERS)
        self.calls: list[str] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.calls.append(request["method"])
                if request["method"] in node.answers:
                    reply = {"jsonrpc": "2.0", "id": request["id"], "result": node.answers[request["method"]]}
                else:
                    reply = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "no such"}}
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> PolkadotNode:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


#: The daemon's log line once it listens (``--port 0`` picks a free port; this says which).
LISTENING = re.compile(r"listening on http://(?P<host>[^\s]+?):(?P<port>\d+) ")


class DaemonProcess:
    """A daemon a test started: its process, its stderr read on a thread, and the port it listens on."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = LISTENING.search(line)
            if match:
                self.port = int(match["port"])
                self._ready.set()
        self._ready.set()

    @property
    def log(self) -> str:
        """Everything the daemon wrote to stderr so far."""
        return "".join(self.lines)

    def wait_listening(self, timeout: float = 20) -> None:
        """Wait until the daemon listens (or ends); fail with its log when it does not."""
        self._ready.wait(timeout)
        assert self.port is not None, f"daemon did not start listening:\n{self.log}"

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM the daemon (unless it ended) and return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)

    def kill(self) -> None:
        """End the daemon at once (unless it ended), reap it and close its stderr: a test's clean-up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def child_processes(pid: int) -> dict[int, str]:
    """The child processes of ``pid`` and their states (``Z`` for a zombie), read from ``/proc``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = fields[0]
    return found


def outside_environment(**extra: str) -> dict[str, str]:
    """This suite's environment as a charm author's shell has it, for a charm copied out of the repository.

    This suite's Python is first on ``PATH``; no import path, pytest options or harvester settings
    of this suite reach the copy. ``extra`` variables are set last (a ``PATH`` of the test's own).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTEST_ADDOPTS") and not key.startswith(("HARVESTER_", "DAEMON_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


# --- an S3-compatible server (the sinks' tests and the subordinate's end-to-end test) -----------------

ACCESS_KEY, SECRET_KEY = "AKIATESTSINKS0000001", "test-secret-key-do-not-log-7f3a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], timeout: float = 20, what: str = "condition", log: Callable[[], str] = str
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{log()}")


class MotoServer:
    """``moto_server`` on a loopback port; ``stop`` and ``start`` again on the same port (an outage)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        executable = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
        self.proc = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "moto_server exited"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/moto-api/data.json")
                conn.getresponse().read()
                conn.close()
                return True
            except OSError:
                return False

        wait_until(up, 30, "moto_server to answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        s3 = self.client()
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        ]
        return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

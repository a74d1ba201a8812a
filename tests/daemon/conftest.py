"""A real daemon in a subprocess on a loopback port, and a tiny HTTP client for it."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import DaemonProcess

# The daemon with lowered internal limits (``serve(..., limits=Limits(...))``), so that a test reaches
# a timeout or the connection cap in a second. Settings come from flags, as the CLI would give them.
LAUNCHER = """
import json, logging, sys
from dwellir_harvester.config import load_settings
from dwellir_harvester.daemon import serve
from dwellir_harvester.daemon._limits import Limits

spec = json.loads(sys.argv[1])
logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
sys.exit(serve(load_settings(spec["flags"]), spec["flags"], limits=Limits(**spec["limits"])))
"""


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        import json

        return json.loads(self.body)


class Daemon(DaemonProcess):
    def request(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 5
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
        finally:
            conn.close()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{self.log}")

    def wait_document(self, headers: dict[str, str] | None = None, timeout: float = 20) -> Reply:
        replies: list[Reply] = []

        def ready() -> bool:
            reply = self.request("/metadata", headers=headers)
            replies.append(reply)
            return reply.status == 200

        self.wait_for(ready, timeout, "the first document")
        return replies[-1]

    def metrics(self, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        from prometheus_client.parser import text_string_to_metric_families

        reply = self.request("/metrics", headers=headers)
        assert reply.status == 200, reply.body
        samples = {}
        for family in text_string_to_metric_families(reply.body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def rss_kib(self) -> int:
        """The daemon's resident memory, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def count(self, text: str) -> int:
        """How many log lines hold ``text``."""
        return sum(text in line for line in list(self.lines))


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start ``dwellir-harvester serve`` with ``args``; it is stopped (killed if need be) after the test."""
    started: list[Daemon] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        output: str | None = None,
        limits: dict[str, float] | None = None,
        flags: dict[str, object] | None = None,
    ) -> Daemon:
        """``args`` for the CLI; or, with ``limits``, ``flags`` (config keys) for ``serve`` itself."""
        out = output if output is not None else str(tmp_path / "harvest.json")
        if limits is None:
            command = [sys.executable, "-m", "dwellir_harvester.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
            command += ["--output", out, *args]
        else:
            assert not args, "with limits, pass flags"
            spec = {"flags": {"host": "127.0.0.1", "port": 0, "output": out, **(flags or {})}, "limits": limits}
            command = [sys.executable, "-c", LAUNCHER, json.dumps(spec)]
        proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        daemon = Daemon(proc)
        started.append(daemon)
        if wait:
            daemon.wait_listening()
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def many_sockets() -> None:
    """Raise this process's soft limit of open files to the hard one: some tests hold 1,600 sockets."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def exchange(port: int, raw: bytes, timeout: float = 5) -> bytes:
    """Send ``raw`` on a new connection and read until the server closes it."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(reply: bytes) -> list[int]:
    """The status codes of the responses in ``reply``, in order."""
    return [int(code) for code in re.findall(rb"(?:^|\n)HTTP/1\.1 (\d{3}) ", reply)]


def healthz_within(port: int, timeout: float) -> float:
    """Seconds a fresh client took to get ``ok`` from /healthz; fails if it took longer than ``timeout``."""
    import socket

    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    took = time.monotonic() - started
    assert statuses(reply) == [200] and reply.endswith(b"ok\n"), reply
    assert took < timeout, took
    return took

"""A real S3-compatible server (moto's standalone server) and the real daemon, both subprocesses on loopback."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import DaemonProcess, MotoServer, wait_until


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One S3 server for the session (tests use buckets of their own)."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_moto() -> Iterator[Callable[..., MotoServer]]:
    """A server of the test's own (to stop and restart, or with credentials checked)."""
    servers: list[MotoServer] = []

    def make(env: dict[str, str] | None = None) -> MotoServer:
        server = MotoServer(env)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


class Daemon(DaemonProcess):
    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        from prometheus_client.parser import text_string_to_metric_families

        status, body = self.get("/metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }

    def sink(self, metric: str, sink: str) -> float:
        return self.metrics().get((f"dwellir_harvester_sink_{metric}", (("sink", sink),)), 0.0)

    def count_reloads(self) -> float:
        return self.metrics().get(("dwellir_harvester_config_reloads_total", (("result", "ok"),)), 0.0)

    def wait(self, predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
        return wait_until(predicate, timeout, what, lambda: self.log)


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """``dwellir-harvester serve --config <tmp>/config.yaml`` with ``config`` (a mapping) as that file."""
    started: list[Daemon] = []

    def start(config: dict[str, Any], env: dict[str, str] | None = None, *args: str) -> Daemon:
        path = tmp_path / "config.yaml"
        path.write_text(json.dumps({"isolation": "thread", "interval": 1, **config}))
        command = [sys.executable, "-m", "dwellir_harvester.cli", "serve", "--config", str(path)]
        command += ["--host", "127.0.0.1", "--port", "0", "--output", "", *args]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**clean, **(env or {})}
        )
        daemon = Daemon(proc)
        started.append(daemon)
        daemon.wait_listening()
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


COUNTER_PLUGIN = '''
import itertools
from dwellir_harvester.lib import GenericCollector

_n = itertools.count()

class Ticker(GenericCollector):
    """Different data every harvest, so that every document makes a history object."""
    NAME = "ticker"
    VERSION = "1.0.0"

    def collect(self):
        return {"n": next(_n)}
'''


@pytest.fixture
def ticker(tmp_path: Path) -> Path:
    """A plugin directory with ``ticker``: its data changes on every harvest."""
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "ticker.py").write_text(COUNTER_PLUGIN)
    return plugins

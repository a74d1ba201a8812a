"""What the example charm's tests share; they need nothing but the charm's folder and installed packages.

- ``src/`` goes on ``sys.path`` (as ``dispatch`` puts it for a packed charm), so tests
  ``import charm``; ``pyproject.toml`` does the same when pytest runs from the charm's folder.
- A JSON-RPC server on loopback plays the Polkadot node (``node``).
- No test inherits the harvester's environment variables from its caller, or may touch the
  machine's real harvester paths, whoever runs the suite (root included).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHARM_DIR = Path(__file__).resolve().parent.parent  # the charm's folder: tests/ is in it
if str(CHARM_DIR / "src") not in sys.path:
    sys.path.insert(0, str(CHARM_DIR / "src"))

REAL_PATHS = ("/etc/dwellir-harvester", "/var/lib/dwellir-harvester")
HARVESTER_VARIABLES = ("HARVESTER_COLLECTOR_PATHS", "HARVESTER_CONFIG", "DAEMON_AUTH_TOKENS", "DAEMON_AUTH_TOKEN_FILE")
GENESIS = "0x91b171bb158e2d3848fa23a9f1c25182fb8e20313b2c1eb49219da7a70ce90c3"
NEEDED = {
    "ops.testing": "'ops[testing]'",
    "dwellir_harvester.charm.testing": "dwellir-harvester-charm",
    "dwellir_harvester.config": "dwellir-harvester",
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # its package is missing
        return False


def pytest_configure(config: pytest.Config) -> None:
    """Say in one line what to install when the packages the tests need are missing."""
    missing = [package for module, package in NEEDED.items() if not installed(module)]
    if missing:
        raise pytest.UsageError(
            f"the charm's tests need {', '.join(missing)}: pip install {' '.join(missing)} (released), or "
            'with wheels built from a checkout of dwellir-harvester: pip install "$DWELLIR_HARVESTER_WHEELS"/*.whl'
        )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No harvester variables from the caller; ops' changes to logging undone; the real paths untouched."""
    for name in HARVESTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    level, handlers, excepthook = root.level, list(root.handlers), sys.excepthook
    before = {str(p): p.stat().st_mtime_ns for top in REAL_PATHS if os.path.isdir(top) for p in Path(top).rglob("*")}
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    sys.excepthook = excepthook
    after = {str(p): p.stat().st_mtime_ns for top in REAL_PATHS if os.path.isdir(top) for p in Path(top).rglob("*")}
    assert after == before, "a test wrote the machine's real harvester files"


class PolkadotNode:
    """A Polkadot node's JSON-RPC API on loopback: ``answers`` by method, the ``calls`` made, its ``url``."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {
            "system_name": "Parity Polkadot",
            "system_version": "1.16.2-4bd2b73c0d3",
            "system_chain": "Polkadot",
            "chain_getBlockHash": GENESIS,
            "system_health": {"peers": 42, "isSyncing": False, "shouldHavePeers": True},
        }
        self.calls: list[str] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.calls.append(request["method"])
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
                if request["method"] in node.answers:
                    reply["result"] = node.answers[request["method"]]
                else:
                    reply["error"] = {"code": -32601, "message": "no such"}
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


@pytest.fixture
def node() -> Iterator[PolkadotNode]:
    """A Polkadot node answering JSON-RPC on a loopback port."""
    running = PolkadotNode()
    thread = threading.Thread(target=running.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
    thread.join()


def copy_collectors(charm_root: Path) -> Path:
    """The charm's ``collectors/`` copied into ``charm_root`` with the modes a packed charm has."""
    target = charm_root / "collectors"
    shutil.copytree(CHARM_DIR / "collectors", target, ignore=shutil.ignore_patterns("__pycache__"))
    target.chmod(0o755)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


class Kit:
    """Helpers the test modules share (with --import-mode=importlib a conftest is not importable)."""

    CHARM_DIR = CHARM_DIR
    GENESIS = GENESIS
    copy_collectors = staticmethod(copy_collectors)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit

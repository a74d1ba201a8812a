"""What the example charm's unit and end-to-end tests share.

- ``src/`` goes on ``sys.path`` (as ``dispatch`` puts it for a packed charm), so tests
  ``import charm``.
- The end-to-end tests run the charm through ``dispatch`` on a machine of the repository's
  controller-free Juju kit (``tests/juju/``).
- A JSON-RPC server on loopback plays the Polkadot node.
- No test may touch the machine's real harvester paths, whoever runs the suite (root included).
"""

from __future__ import annotations

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

CHARM_DIR = Path(__file__).resolve().parents[1]
REPO = CHARM_DIR.parents[1]
HOOKTOOLS = Path(__file__).resolve().parent / "fakes" / "hooktools.py"

if str(CHARM_DIR / "src") not in sys.path:
    sys.path.insert(0, str(CHARM_DIR / "src"))

GENESIS = "0x91b171bb158e2d3848fa23a9f1c25182fb8e20313b2c1eb49219da7a70ce90c3"
NODE_ANSWERS: dict[str, Any] = {
    "system_name": "Parity Polkadot",
    "system_version": "1.16.2-4bd2b73c0d3",
    "system_chain": "Polkadot",
    "chain_getBlockHash": GENESIS,
    "system_health": {"peers": 42, "isSyncing": False, "shouldHavePeers": True},
}


def copy_collectors(charm_root: Path) -> Path:
    """The charm's ``collectors/`` copied into ``charm_root`` with the modes a packed charm has."""
    target = charm_root / "collectors"
    shutil.copytree(CHARM_DIR / "collectors", target, ignore=shutil.ignore_patterns("__pycache__"))
    target.chmod(0o755)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


class Node:
    """A Polkadot node's JSON-RPC API on loopback: ``answers`` maps a method to its result."""

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

    def __enter__(self) -> Node:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def node() -> Iterator[Node]:
    """A Polkadot node answering JSON-RPC on a loopback port."""
    with Node() as running:
        yield running


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits plugin paths, a config file or tokens from its caller."""
    for name in (
        "HARVESTER_COLLECTOR_PATHS",
        "HARVESTER_CONFIG",
        "DAEMON_AUTH_TOKENS",
        "DAEMON_AUTH_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """ops sets the root logger to DEBUG (and hooks sys.excepthook) when it runs a charm; undo that."""
    root = logging.getLogger()
    level, handlers, excepthook = root.level, list(root.handlers), sys.excepthook
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    sys.excepthook = excepthook


_REAL_PATHS = (
    "/etc/dwellir-harvester",
    "/var/lib/dwellir-harvester",
    "/etc/systemd/system/dwellir-harvester.service",
)


def _listing() -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for top in _REAL_PATHS:
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                st = os.stat(os.path.join(dirpath, name))
                found[os.path.join(dirpath, name)] = (st.st_ino, st.st_mtime_ns)
        if os.path.isfile(top):
            st = os.stat(top)
            found[top] = (st.st_ino, st.st_mtime_ns)
    return found


@pytest.fixture(autouse=True)
def _never_touch_the_real_machine() -> Iterator[None]:
    """The tests run as any user, root included: none of them may write the machine's real paths."""
    before = _listing()
    yield
    assert _listing() == before, "a test wrote the machine's real harvester files"


class Kit:
    """Helpers the test modules share (with --import-mode=importlib a conftest is not importable)."""

    CHARM_DIR = CHARM_DIR
    REPO = REPO
    GENESIS = GENESIS
    copy_collectors = staticmethod(copy_collectors)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit

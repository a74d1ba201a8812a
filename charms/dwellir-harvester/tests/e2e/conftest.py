"""The whole machine without a controller: the example node charm and this subordinate, the daemon running.

Both charms are laid out on one machine of the repository's Juju kit (``tests/juju``), each with its
own ``venv/`` (built once per session). What the tests share:

- ``example_charm``: a copy of ``examples/example-charm`` with one test-only collector more,
  ``venv-probe`` (``collectors/venv_probe.py``), which imports ``only_in_example_venv``: a package
  only the example unit's venv gets (``venv_extras``). The copy's ``src/charm.py`` ends with a
  subclass, ``ProbedExampleCharm``, that wires the probe in beside the charm's own collectors.
- ``polkadot``: a Polkadot node's JSON-RPC API on loopback (the answers a Substrate node gives).
- ``Whole``: deploy both charms and relate them as Juju would; fetch ``/metadata`` from the running
  daemon; poll it (a bounded wait) until a harvest shows what a test waits for, with the daemon's
  journal in the failure message.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SUBORDINATE = Path(__file__).resolve().parents[2]
REPO = SUBORDINATE.parents[1]
EXAMPLE = REPO / "examples" / "example-charm"
ONLY_IN_EXAMPLE_VENV = Path(__file__).resolve().parent / "only_in_example_venv"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.juju import Machine, Unit, VenvCache  # noqa: E402
from tests.support import PolkadotNode  # noqa: E402

JOURNAL = "/var/log/dwellir-harvester.log"
#: The longest a test waits for the daemon to show a change (a harvest every second).
WAIT = 30.0

VENV_PROBE = '''"""Test-only: where ``only_in_example_venv`` imports from, and which Python ran this collector."""

import sys

import only_in_example_venv

from dwellir_harvester.lib import GenericCollector


class VenvProbeCollector(GenericCollector):
    NAME = "venv-probe"
    VERSION = "1.0.0"

    def collect(self):
        return {
            "module": only_in_example_venv.__file__,
            "marker": only_in_example_venv.MARKER,
            "python": sys.executable,
        }
'''

PROBED_CHARM = '''

class ProbedExampleCharm(HarvesterExampleCharm):
    """The example charm with the test-only ``venv-probe`` collector wired in beside its own."""

    def _wiring(self):
        collectors, options = super()._wiring()
        return (collectors if "venv-probe" in collectors else [*collectors, "venv-probe"]), options
'''


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Whole:
    """The machine with both charms on it, and what a test asks of the running daemon.

    Attributes:
        machine: the kit's machine.
        node: the example charm's unit (``harvester-example/0``), once deployed.
        harvester: the subordinate's first unit (``dwellir-harvester/0``), once deployed.
        port: the daemon's port.
        token: the daemon's bearer token (from the ``auth-tokens`` secret).
    """

    def __init__(self, machine: Machine, example_charm: Path, polkadot: PolkadotNode) -> None:
        self.machine = machine
        self.example_charm = example_charm
        self.polkadot = polkadot
        self.port = free_port()
        self.token = "tok-" + "5f0c1e9a7b3d4c2e8f6a9b0c1d2e3f4a"
        self.node: Unit | None = None
        self.harvester: Unit | None = None
        self.secret: str | None = None

    def deploy_node(self) -> Unit:
        """``juju deploy`` the example charm (its venv with the test-only package) with ``rpc-url`` set."""
        node = self.machine.deploy(
            self.example_charm, venv_extras=[ONLY_IN_EXAMPLE_VENV], charm_class="ProbedExampleCharm"
        )
        node.config(rpc_url=self.polkadot.url)
        node.deploy()
        self.node = node
        return node

    def deploy_harvester(self, principal: Unit | None = None) -> Unit:
        """The subordinate's unit next to ``principal`` (default: the example's), related to it as Juju does.

        The application's config: interval 1 s, a free port, the token secret (added once).
        """
        principal = principal or self.node
        assert principal is not None
        harvester = self.machine.deploy(SUBORDINATE, principal=principal)
        if self.secret is None:
            self.secret = harvester.add_secret({"tokens": self.token})
        harvester.config(port=self.port, interval=1, auth_tokens=self.secret)
        harvester.deploy()
        harvester.relate(principal, "juju-info")
        self.harvester = self.harvester or harvester
        return harvester

    def journal(self) -> str:
        """The daemon's journal (the systemctl stand-in's log of the service), its last 6000 characters."""
        path = self.machine.path(JOURNAL)
        return path.read_text(encoding="utf-8", errors="replace")[-6000:] if path.exists() else "(no journal)"

    def get(self, path: str = "/metadata", token: str | None = "") -> tuple[int, bytes]:
        """GET ``path`` from the daemon: (status, body). ``token`` "" sends the configured one, None none."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read()

    def document(self) -> dict[str, Any]:
        """The daemon's current ``/metadata`` document."""
        status, body = self.get()
        assert status == 200, f"/metadata answered {status}: {body[:300]!r}\n{self.journal()}"
        result: dict[str, Any] = json.loads(body)
        return result

    def wait_for(self, what: str, ready: Callable[[dict[str, Any]], bool], after: str | None = None) -> dict[str, Any]:
        """Poll ``/metadata`` until a document harvested after ``after`` satisfies ``ready``; return it.

        Args:
            what: what the test waits for, for the failure message.
            ready: the condition on the document.
            after: a ``harvester.collection_time``; only a later harvest counts (None: any).
        """
        deadline = time.monotonic() + WAIT
        last: Any = None
        while time.monotonic() < deadline:
            try:
                status, body = self.get()
            except OSError as err:  # not listening yet (a restart)
                last = err
            else:
                if status == 200:
                    last = json.loads(body)
                    fresh = after is None or last["harvester"]["collection_time"] > after
                    if fresh and ready(last):
                        result: dict[str, Any] = last
                        return result
                else:
                    last = (status, body[:300])
            time.sleep(0.1)
        shown = json.dumps(last, indent=1)[-3000:] if isinstance(last, dict) else repr(last)
        raise AssertionError(f"no document within {WAIT:g} s where {what}; the last: {shown}\n{self.journal()}")


@pytest.fixture(scope="session")
def example_charm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``examples/example-charm`` with the test-only ``venv-probe`` collector and ``ProbedExampleCharm``."""
    copy = tmp_path_factory.mktemp("charms") / "example-charm"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "tests", "venv", "wheels"))
    (copy / "collectors" / "venv_probe.py").write_text(VENV_PROBE, encoding="utf-8")
    charm = copy / "src" / "charm.py"
    charm.write_text(charm.read_text(encoding="utf-8") + PROBED_CHARM, encoding="utf-8")
    return copy


@pytest.fixture
def polkadot() -> Iterator[PolkadotNode]:
    """A Polkadot node answering JSON-RPC on a loopback port."""
    with PolkadotNode() as running:
        yield running


@pytest.fixture
def whole(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, example_charm: Path, polkadot: PolkadotNode
) -> Iterator[Whole]:
    """A machine (nothing deployed yet); every daemon the systemctl stand-in started is stopped after the test."""
    with Machine(tmp_path, VenvCache.for_session(tmp_path_factory)) as machine:
        yield Whole(machine, example_charm, polkadot)

"""The example charm as Juju runs it, without a controller: on a machine of the repository's kit (``tests/juju``).

These tests live here, not in ``examples/example-charm/tests``, because they need the kit, which a
copy of the charm's folder cannot carry. Each test gets a fresh machine under ``tmp_path`` with
the charm deployed on it as ``harvester-example/0`` (laid out as ``charmcraft pack`` lays it out,
its ``venv/`` built once per session, nothing run yet). See ``tests/juju/__init__.py`` for what
the machine offers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.juju import Machine, Unit, VenvCache  # noqa: E402
from tests.support import PolkadotNode  # noqa: E402

CHARM_DIR = REPO / "examples" / "example-charm"


@pytest.fixture
def machine(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    with Machine(tmp_path, VenvCache.for_session(tmp_path_factory)) as made:
        yield made


@pytest.fixture
def unit(machine: Machine) -> Unit:
    """``harvester-example/0``, deployed on the machine but not installed yet."""
    return machine.deploy(CHARM_DIR)


@pytest.fixture
def node() -> Iterator[PolkadotNode]:
    """A Polkadot node answering JSON-RPC on a loopback port."""
    with PolkadotNode() as running:
        yield running

"""What the example charm's unit and end-to-end tests share.

- ``src/`` goes on ``sys.path`` (as ``dispatch`` puts it for a packed charm), so tests
  ``import charm``.
- The end-to-end tests run the charm through ``dispatch`` on a machine of the repository's
  controller-free Juju kit (``tests/juju/``).
- A JSON-RPC server on loopback plays the Polkadot node.
- No test may touch the machine's real harvester paths, whoever runs the suite (root included).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CHARM_DIR = Path(__file__).resolve().parents[1]
REPO = CHARM_DIR.parents[1]

for _path in (CHARM_DIR / "src", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.support import (  # noqa: E402 - the repository root is on sys.path only now
    GENESIS,
    PolkadotNode,
    charm_environment,  # noqa: F401 - autouse fixtures of every test here
    never_touch_the_real_machine,  # noqa: F401
    restore_logging,  # noqa: F401
)


def copy_collectors(charm_root: Path) -> Path:
    """The charm's ``collectors/`` copied into ``charm_root`` with the modes a packed charm has."""
    target = charm_root / "collectors"
    shutil.copytree(CHARM_DIR / "collectors", target, ignore=shutil.ignore_patterns("__pycache__"))
    target.chmod(0o755)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.fixture
def node() -> Iterator[PolkadotNode]:
    """A Polkadot node answering JSON-RPC on a loopback port."""
    with PolkadotNode() as running:
        yield running


class Kit:
    """Helpers the test modules share (with --import-mode=importlib a conftest is not importable)."""

    CHARM_DIR = CHARM_DIR
    REPO = REPO
    GENESIS = GENESIS
    copy_collectors = staticmethod(copy_collectors)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit

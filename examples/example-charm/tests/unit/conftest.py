"""Fixtures for the charm's ops[testing] (Scenario) tests.

Each test gets a machine of its own in ``tmp_path``, handed to the charm the way
docs/charm-authors.md shows (section 7): a ``Sandbox`` (the harvester's directories under
``tmp_path/machine`` and a ``FakeSystemd``), routed in through the charm's ``harvester_args``
class attribute with ``testing.subclass``. The sandbox's systemd has the subordinate's
``dwellir-harvester`` service running, as on a machine where the subordinate is related; a test
that wants a machine without it uninstalls it. The charm runs from ``tmp_path/charm``, which holds
a copy of ``collectors/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import charm
import pytest
from ops import testing

from dwellir_harvester.charm.testing import Sandbox, subclass

APP = "harvester-example"
SERVICE = "dwellir-harvester"  # the subordinate's service, which the Harvester reloads
MODEL = testing.Model(name="prod", uuid="8ad3c5c2-3a0c-4c47-9f0a-7f4a6c1d2e3f")


class Machine:
    """The unit's machine: the sandbox's paths and systemd, and what a test looks at."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sandbox = Sandbox(root, services={SERVICE: "active"})
        self.systemd = self.sandbox.systemd
        self.dropin = self.sandbox.dropin_path(APP)
        self.snapshot = self.sandbox.snapshot_path(APP)

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file under the root, with what a rewrite changes (inode, mtime)."""
        found = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                st = os.stat(os.path.join(dirpath, name))
                found[os.path.relpath(os.path.join(dirpath, name), self.root)] = (st.st_ino, st.st_mtime_ns)
        return found


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path / "machine")


@pytest.fixture
def charm_root(tmp_path: Path, kit: Any) -> Path:
    root = tmp_path / "charm"
    root.mkdir()
    kit.copy_collectors(root)
    return root


def on_machine(machine: Machine) -> type[charm.HarvesterExampleCharm]:
    """The charm with the machine's Harvester arguments (its metadata still found from charmcraft.yaml)."""
    return subclass(charm.HarvesterExampleCharm, harvester_args=machine.sandbox.harvester_args())


@pytest.fixture
def ctx(charm_root: Path, machine: Machine) -> testing.Context[charm.HarvesterExampleCharm]:
    """The charm in Scenario on ``machine``, its metadata from charmcraft.yaml, run from ``charm_root``."""
    return testing.Context(on_machine(machine), charm_root=charm_root, app_name=APP)


def state(**kwargs: Any) -> testing.State:
    """A State in one fixed model (Scenario makes up a new model name and UUID for every State)."""
    return testing.State(model=MODEL, **kwargs)


class Unit:
    """What the unit test modules share."""

    APP = APP
    SERVICE = SERVICE
    MODEL = MODEL
    state = staticmethod(state)
    on_machine = staticmethod(on_machine)


@pytest.fixture(scope="session")
def unit() -> type[Unit]:
    return Unit


@pytest.fixture
def run(ctx: testing.Context[charm.HarvesterExampleCharm]) -> Callable[..., testing.State]:
    """``run(event_name, state, **event_kwargs)``: run one hook and return the output state."""

    def go(event: str, before: testing.State | None = None, **kwargs: Any) -> testing.State:
        factory = getattr(ctx.on, event)
        return ctx.run(factory(**kwargs), before if before is not None else state())

    return go

"""The charm in ops[testing]: its drop-in, its status, and the run-collectors action.

Each test runs the charm on a ``Sandbox``: the harvester's directories under ``tmp_path`` and a
fake systemd, handed to the charm through its ``harvester_args`` class attribute. The charm runs
from a copy of its ``collectors/`` with the modes a packed charm has.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dwellir_harvester.charm.testing import DropinWithdrawn, Sandbox, subclass
from ops import testing

import charm

COLLECTORS = Path(charm.__file__).resolve().parent.parent / "collectors"  # the charm's own


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "machine", services={"dwellir-harvester": "active"})


@pytest.fixture
def charm_root(tmp_path: Path) -> Path:
    """The charm's folder as a unit has it: its collectors, not writable by other users."""
    target = tmp_path / "charm" / "collectors"
    shutil.copytree(COLLECTORS, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (target, *target.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target.parent


def context(sandbox: Sandbox, charm_root: Path) -> testing.Context[charm.MinimalNodeCharm]:
    charm_type = subclass(charm.MinimalNodeCharm, harvester_args=sandbox.harvester_args())
    return testing.Context(charm_type, charm_root=charm_root)  # the app is named as the charm


def test_install_wires_the_collector_in_and_the_unit_is_active(sandbox, charm_root):
    ctx = context(sandbox, charm_root)

    out = ctx.run(ctx.on.install(), testing.State())

    dropin = sandbox.read_dropin(ctx.app_name)
    assert dropin["collectors"] == ["node-limits"]
    assert dropin["collector_paths"] == [str(charm_root / "collectors")]
    assert ("service_reload", "dwellir-harvester") in sandbox.systemd.calls
    assert out.unit_status == testing.ActiveStatus("ships node-limits to the harvester")


@pytest.mark.parametrize("damage", ["missing", "world-writable"])
def test_collectors_the_harvester_would_refuse_block_the_unit(sandbox, charm_root, damage):
    collectors = charm_root / "collectors"
    if damage == "missing":
        shutil.rmtree(collectors)
    else:
        collectors.chmod(0o777)
    ctx = context(sandbox, charm_root)

    out = ctx.run(ctx.on.install(), testing.State())

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("harvester: "), out.unit_status.message
    with pytest.raises(DropinWithdrawn):  # the drop-in holds only why, for the harvester to report
        sandbox.read_dropin(ctx.app_name)


def test_the_action_runs_the_charms_own_collector_successfully(sandbox, charm_root):
    ctx = context(sandbox, charm_root)

    ctx.run(ctx.on.action("run-collectors"), testing.State())

    assert ctx.action_results is not None
    document = json.loads(ctx.action_results["output"])
    entry = document["collectors"]["node-limits"]
    assert entry["meta"]["status"] == "success", entry["meta"]  # not just "the action did not fail"
    assert entry["data"]["cpus"] >= 1

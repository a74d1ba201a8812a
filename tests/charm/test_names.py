"""Which names a charm may list: the rule names neither the runner nor its namespace.

The hook cannot see every collector the harvester has, so a name it does not discover is a
warning, unless it is a near miss of one of the charm's own collectors and the charm's dir loaded
cleanly. The answer must not depend on whether the runner happens to be installed in the charm's
environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dwellir_harvester.charm import _wiring
from dwellir_harvester.lib import load_collectors

EVERYWHERE = {"entry_points": True, "builtin_distribution": "dwellir-harvester"}
CHARM_ONLY = {"entry_points": False}  # a charm whose environment has no runner


@pytest.fixture(params=[EVERYWHERE, CHARM_ONLY], ids=["runner-installed", "charm-only"])
def registry_of(request):
    def load(directory):
        return load_collectors([directory], env=False, **request.param)

    return load


@pytest.fixture
def directory(charm_root):
    return charm_root / "collectors"


def test_a_near_miss_of_the_charms_own_collector_is_an_error_wherever_the_hook_runs(registry_of, directory):
    wiring = _wiring.check(registry_of(directory), directory, ["peers", "peres"], {})
    assert wiring.error == "unknown collector 'peres' (did you mean 'peers'?)"


def test_a_name_the_hook_cannot_see_is_a_warning_wherever_the_hook_runs(registry_of, directory):
    wiring = _wiring.check(registry_of(directory), directory, ["peers", "chain-metrics"], {"chain-metrics": {"a": 1}})
    assert wiring.error is None
    assert wiring.names == ("peers", "chain-metrics")
    assert wiring.warnings == (
        "collector 'chain-metrics' is not discoverable from the charm; the harvester must provide it",
    )


def test_a_near_miss_is_only_a_warning_while_a_plugin_of_the_charm_is_broken(registry_of, directory, kit):
    """The name may be the broken plugin's: nothing can be concluded until it imports."""
    kit.write_collector(directory, "zbroken", "def oops(:\n")
    wiring = _wiring.check(registry_of(directory), directory, ["peres"], {"peres": {}})
    assert wiring.error is None
    assert "collector 'peres' is not discoverable from the charm; the harvester must provide it" in wiring.warnings
    assert any("zbroken.py" in warning for warning in wiring.warnings)


def test_options_of_a_discovered_collector_are_always_checked(registry_of, directory):
    wiring = _wiring.check(registry_of(directory), directory, None, {"peers": {"rpc_ulr": "x"}})
    assert "unknown option 'rpc_ulr'" in wiring.error


def test_the_charms_own_collectors_are_those_defined_in_its_dir(registry_of, directory):
    assert _wiring.own_names(registry_of(directory), directory) == ["blocks", "peers"]


def test_a_listed_built_in_is_written_with_at_most_a_warning(context, sandbox, kit):
    ctx = context(collectors=["peers", "juju-charm"])
    state = ctx.run(ctx.on.install(), kit.state())
    assert sandbox.read_dropin(kit.APP)["collectors"] == ["peers", "juju-charm"]
    assert state.unit_status.name == "active"


def test_the_rule_is_written_in_the_guide():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "charm-authors.md").read_text()
    assert "near miss" in guide
    assert "built-ins are visible" not in guide  # the old rule

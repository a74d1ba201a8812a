"""charmcraft.yaml and requirements.txt: what Juju, charmcraft and the Harvester expect of them.

The repository checks more of them against itself (its guide, its packages, charmcraft's own
reading): ``tests/examples/test_declarations.py`` there.
"""

from __future__ import annotations

from pathlib import Path

import charm
import yaml
from ops import testing

from dwellir_harvester.lib import load_collectors

CHARM_DIR = Path(charm.__file__).resolve().parent.parent
CHARMCRAFT = yaml.safe_load((CHARM_DIR / "charmcraft.yaml").read_text())
OPTIONS = CHARMCRAFT["config"]["options"]


def test_charmcraft_yaml_is_a_unified_machine_charm_on_noble():
    assert CHARMCRAFT["type"] == "charm"
    assert CHARMCRAFT["name"] == "harvester-example"
    assert CHARMCRAFT["base"] == "ubuntu@24.04"
    assert list(CHARMCRAFT["platforms"]) == ["amd64"]
    assert "containers" not in CHARMCRAFT  # a machine charm
    for legacy in ("metadata.yaml", "actions.yaml", "config.yaml"):
        assert not (CHARM_DIR / legacy).exists()


def test_the_harvester_finds_the_action_and_its_params(tmp_path, kit, machine, unit):
    root = tmp_path / "charm"
    kit.copy_collectors(root)
    ctx = testing.Context(unit.on_machine(machine), charm_root=root)
    ctx.run(ctx.on.update_status(), testing.State())

    warnings = [entry.message for entry in ctx.juju_log if entry.level == "WARNING"]
    assert warnings == []  # no "does not declare the action" or "does not declare the params ..."


def test_every_declared_param_reaches_the_harvester_with_the_type_juju_gives_it(tmp_path, kit, machine, unit):
    declared = CHARMCRAFT["actions"]["run-collectors"]["params"]
    assert set(declared) == {"collectors", "exclude", "validate", "timeout"}
    assert {name: spec["type"] for name, spec in declared.items()} == {
        "collectors": "string",
        "exclude": "string",
        "validate": "boolean",
        "timeout": "number",
    }
    root = tmp_path / "charm"
    kit.copy_collectors(root)
    ctx = testing.Context(unit.on_machine(machine), charm_root=root)
    params = {"collectors": "unit-facts,juju-charm,host", "exclude": "host", "validate": False, "timeout": 2.5}
    ctx.run(ctx.on.action("run-collectors", params=params), testing.State())

    assert "running 2 collectors (2.5 s each): unit-facts, juju-charm" in ctx.action_logs
    assert ctx.action_results["status"] == "success"


def test_the_only_option_is_the_chain_collectors_rpc_url():
    """The daemon's options (address, port, interval, collectors, tokens) belong to the subordinate."""
    assert set(OPTIONS) == {"rpc-url"}
    spec = OPTIONS["rpc-url"]
    assert (spec["type"], spec["default"]) == ("string", "http://127.0.0.1:9944")
    assert len(spec["description"]) > 40


def test_the_defaults_are_a_valid_config():
    assert charm.rpc_url_problem(OPTIONS["rpc-url"]["default"]) is None


def test_a_principal_that_says_how_to_run_the_daemon():
    assert not CHARMCRAFT.get("subordinate", False)
    for key in ("requires", "provides", "peers"):  # juju-info is implicit: every charm provides it
        assert key not in CHARMCRAFT
    assert "dwellir-harvester" in CHARMCRAFT["description"]
    assert "juju integrate harvester-example dwellir-harvester" in CHARMCRAFT["description"]
    readme = (CHARM_DIR / "README.md").read_text()
    for command in (
        "juju deploy ./harvester-example_amd64.charm",
        "juju deploy ./dwellir-harvester_amd64.charm",
        "juju integrate harvester-example dwellir-harvester",
    ):
        assert command in readme


def test_the_charm_ships_the_two_collectors_it_names():
    registry = load_collectors([CHARM_DIR / "collectors"], env=False)
    own = [spec.name for spec in registry.discovered if spec.namespace == "plugins"]
    assert sorted(own) == sorted(charm.OWN_COLLECTORS)
    assert registry.problems == []

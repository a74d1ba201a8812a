"""charmcraft.yaml and requirements.txt: what Juju, charmcraft and the Harvester expect of them."""

from __future__ import annotations

from pathlib import Path

import charm
from ops import testing

from dwellir_harvester.lib import load_collectors
from tests import charm_project

CHARM_DIR = Path(__file__).resolve().parents[2]
REPO = CHARM_DIR.parents[1]
PROJECT = charm_project.CharmProject(CHARM_DIR)
CHARMCRAFT = PROJECT.charmcraft
OPTIONS = CHARMCRAFT["config"]["options"]


def test_charmcraft_yaml_is_a_unified_machine_charm_on_noble():
    assert CHARMCRAFT["type"] == "charm"
    assert CHARMCRAFT["name"] == "harvester-example"
    assert CHARMCRAFT["base"] == "ubuntu@24.04"
    assert list(CHARMCRAFT["platforms"]) == ["amd64"]
    assert "containers" not in CHARMCRAFT  # a machine charm
    for legacy in ("metadata.yaml", "actions.yaml", "config.yaml"):
        assert not (CHARM_DIR / legacy).exists()


def test_the_action_is_declared_exactly_as_the_guide_says():
    assert CHARMCRAFT["actions"] == charm_project.guide_snippet()["actions"]
    assert CHARMCRAFT["actions"]["run-collectors"]["additionalProperties"] is False


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


def test_every_option_the_charm_reads_is_declared():
    read = PROJECT.config_keys_read()
    assert read == set(OPTIONS), (read, set(OPTIONS))


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


# --- packing ---------------------------------------------------------------------------------


def test_requirements_install_this_repositorys_packages_from_the_wheels_pack_sh_builds():
    PROJECT.check_wheels()


def test_requirements_pin_everything_the_charm_needs_at_run_time():
    """charm-strict-dependencies installs with --no-deps: every dependency must be listed, pinned."""
    PROJECT.check_pins()


def test_charmcraft_expands_the_file():
    """What the charm-lint step runs: charmcraft's own reading of charmcraft.yaml."""
    expanded = PROJECT.expanded()
    assert expanded["name"] == CHARMCRAFT["name"]

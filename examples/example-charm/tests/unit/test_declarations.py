"""charmcraft.yaml and requirements.txt: what Juju, charmcraft and the Harvester expect of them."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import charm
import pytest
import yaml
from ops import testing

from dwellir_harvester.lib import load_collectors

CHARM_DIR = Path(__file__).resolve().parents[2]
REPO = CHARM_DIR.parents[1]
CHARMCRAFT = yaml.safe_load((CHARM_DIR / "charmcraft.yaml").read_text())
OPTIONS = CHARMCRAFT["config"]["options"]


def guide_snippet() -> dict:
    """The action declaration docs/charm-authors.md tells charm authors to copy, exactly."""
    guide = (REPO / "docs" / "charm-authors.md").read_text()
    section = guide.split("## 3. Declare the action", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    return yaml.safe_load(block.group(1))


def test_charmcraft_yaml_is_a_unified_machine_charm_on_noble():
    assert CHARMCRAFT["type"] == "charm"
    assert CHARMCRAFT["name"] == "harvester-example"
    assert CHARMCRAFT["base"] == "ubuntu@24.04"
    assert list(CHARMCRAFT["platforms"]) == ["amd64"]
    assert "containers" not in CHARMCRAFT  # a machine charm
    for legacy in ("metadata.yaml", "actions.yaml", "config.yaml"):
        assert not (CHARM_DIR / legacy).exists()


def test_the_action_is_declared_exactly_as_the_guide_says():
    assert CHARMCRAFT["actions"] == guide_snippet()["actions"]
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
    assert set(declared) == {"collectors", "validate", "timeout"}
    assert {name: spec["type"] for name, spec in declared.items()} == {
        "collectors": "string",
        "validate": "boolean",
        "timeout": "number",
    }
    root = tmp_path / "charm"
    kit.copy_collectors(root)
    ctx = testing.Context(unit.on_machine(machine), charm_root=root)
    params = {"collectors": "unit-facts,juju-charm", "validate": False, "timeout": 2.5}
    ctx.run(ctx.on.action("run-collectors", params=params), testing.State())

    assert "running 2 collectors (2.5 s each): unit-facts, juju-charm" in ctx.action_logs
    assert ctx.action_results["status"] == "success"


def config_keys_read() -> set[str]:
    """Every config option the charm's code reads: ``config.get("x")`` and ``config["x"]``."""
    found: set[str] = set()
    for path in (CHARM_DIR / "src").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                target, key = node.func.value, node.args[0] if node.args else None
            elif isinstance(node, ast.Subscript):
                target, key = node.value, node.slice
            else:
                continue
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if name == "config" and isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.add(key.value)
    return found


def test_every_option_the_charm_reads_is_declared():
    read = config_keys_read()
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

REQUIREMENTS = [
    line.strip()
    for line in (CHARM_DIR / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.strip().startswith("#")
]


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def test_requirements_install_this_repositorys_packages_from_the_wheels_pack_sh_builds():
    wheels = [line for line in REQUIREMENTS if line.startswith("./wheels/")]
    expected = []
    for folder in ("harvester-lib", "harvester", "charm-helpers"):
        project = (REPO / folder / "pyproject.toml").read_text()
        name = re.search(r'^name = "([^"]+)"', project, re.M).group(1)
        version = importlib.metadata.version(name)
        expected.append(f"./wheels/{name.replace('-', '_')}-{version}-py3-none-any.whl")
    assert wheels == expected
    assert "wheels" in (CHARM_DIR / "pack.sh").read_text()


def test_requirements_pin_everything_the_charm_needs_at_run_time():
    """charm-strict-dependencies installs with --no-deps: every dependency must be listed, pinned."""
    from packaging.requirements import Requirement

    pinned = {}
    for line in REQUIREMENTS:
        if not line.startswith("./"):
            requirement = Requirement(line)
            assert str(requirement.specifier).startswith("=="), line
            pinned[_name(requirement.name)] = requirement
    needed: set[str] = set()
    todo = ["dwellir-harvester-charm", "dwellir-harvester"]
    while todo:
        for text in importlib.metadata.requires(todo.pop()) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = _name(requirement.name)
            if name not in needed:
                needed.add(name)
                todo.append(name)
    needed -= {"dwellir-harvester-lib"}
    assert needed <= set(pinned), sorted(needed - set(pinned))
    binary = CHARMCRAFT["parts"]["charm"]["charm-binary-python-packages"]
    assert {_name(b) for b in binary} <= set(pinned)
    assert CHARMCRAFT["parts"]["charm"]["charm-strict-dependencies"] is True


def test_charmcraft_expands_the_file():
    """What the lint step runs; skipped where charmcraft is not installed."""
    charmcraft = Path(sys.executable).with_name("charmcraft")
    if not charmcraft.exists():
        pytest.skip("charmcraft is not installed in this environment")
    proc = subprocess.run(
        [str(charmcraft), "expand-extensions"], cwd=CHARM_DIR, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    expanded = yaml.safe_load(proc.stdout)
    assert expanded["actions"] == CHARMCRAFT["actions"]
    assert expanded["config"] == CHARMCRAFT["config"]

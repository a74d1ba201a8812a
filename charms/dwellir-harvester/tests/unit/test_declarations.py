"""charmcraft.yaml and requirements.txt: what Juju, charmcraft and pack.sh expect of them."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

CHARM_DIR = Path(__file__).resolve().parents[2]
REPO = CHARM_DIR.parents[1]
CHARMCRAFT = yaml.safe_load((CHARM_DIR / "charmcraft.yaml").read_text())
OPTIONS = CHARMCRAFT["config"]["options"]


def guide_snippet() -> dict:
    """The run-collectors declaration docs/charm-authors.md tells charm authors to copy."""
    guide = (REPO / "docs" / "charm-authors.md").read_text()
    section = guide.split("## 3. Declare the action", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    return yaml.safe_load(block.group(1))


def test_charmcraft_yaml_is_a_unified_subordinate_machine_charm_on_noble():
    assert CHARMCRAFT["type"] == "charm"
    assert CHARMCRAFT["name"] == "dwellir-harvester"
    assert CHARMCRAFT["subordinate"] is True
    assert CHARMCRAFT["base"] == "ubuntu@24.04"
    assert list(CHARMCRAFT["platforms"]) == ["amd64"]
    assert CHARMCRAFT["requires"] == {"juju-info": {"interface": "juju-info", "scope": "container"}}
    assert "containers" not in CHARMCRAFT and "provides" not in CHARMCRAFT
    for legacy in ("metadata.yaml", "actions.yaml", "config.yaml"):
        assert not (CHARM_DIR / legacy).exists()


def test_run_collectors_takes_the_helpers_params_with_the_same_types_and_rules():
    ours, theirs = CHARMCRAFT["actions"]["run-collectors"], guide_snippet()["actions"]["run-collectors"]
    assert ours["additionalProperties"] is False
    assert {name: (spec["type"], spec.get("default")) for name, spec in ours["params"].items()} == {
        name: (spec["type"], spec.get("default")) for name, spec in theirs["params"].items()
    }
    assert CHARMCRAFT["actions"]["show-config"] == {
        "description": CHARMCRAFT["actions"]["show-config"]["description"],
        "additionalProperties": False,
    }


def config_keys_read() -> set[str]:
    """Every config option the charm's code reads: ``config.get("x")``, ``config["x"]``, ``f(config, "x")``."""
    found: set[str] = set()
    for path in (CHARM_DIR / "src").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and len(node.args) >= 2 and getattr(node.args[0], "id", None) == "config":
                key = node.args[1]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    found.add(key.value)
                continue
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
    assert config_keys_read() == set(OPTIONS)


@pytest.mark.parametrize(
    ("option", "kind", "default"),
    [
        ("bind-address", "string", "127.0.0.1"),
        ("port", "int", 18080),
        ("interval", "int", 300),
        ("collectors", "string", "host juju juju-charm"),
        ("exclude-collectors", "string", ""),
        ("worker-memory-mb", "int", 1024),
        ("log-level", "string", "INFO"),
        ("s3-endpoint-url", "string", ""),
        ("s3-bucket", "string", ""),
        ("s3-prefix", "string", "dwellir-harvester"),
        ("s3-region", "string", ""),
        ("s3-path-style", "boolean", True),
    ],
)
def test_options_have_a_sensible_type_default_and_description(option, kind, default):
    spec = OPTIONS[option]
    assert (spec["type"], spec["default"]) == (kind, default)
    assert len(spec["description"]) > 40


def test_the_worker_memory_default_is_the_sdks():
    from dwellir_harvester.lib.isolation import DEFAULT_MEMORY_MB

    assert OPTIONS["worker-memory-mb"]["default"] == DEFAULT_MEMORY_MB


SECRET_OPTIONS = ("auth-tokens", "s3-credentials")


def test_tokens_and_s3_credentials_come_only_through_juju_secrets():
    for name in SECRET_OPTIONS:
        assert OPTIONS[name]["type"] == "secret"
        assert "default" not in OPTIONS[name]
    for name, spec in OPTIONS.items():
        if name not in SECRET_OPTIONS:
            assert spec["type"] != "secret"
            assert not re.search(r"token|password|secret|key|credential", name), f"{name}: a plain-text credential"


def test_the_defaults_are_a_valid_config(sub):
    defaults = {name: spec["default"] for name, spec in OPTIONS.items() if "default" in spec}
    settings = sub.workload.parse_config(defaults, sub.workload.available_collectors())
    assert settings.problems == ()
    assert settings.collectors == ("host", "juju", "juju-charm")


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
        match = re.search(r'^name = "([^"]+)"', project, re.M)
        assert match is not None
        version = importlib.metadata.version(match.group(1))
        expected.append(f"./wheels/{match.group(1).replace('-', '_')}-{version}-py3-none-any.whl")
    assert wheels == expected
    wrapper = (CHARM_DIR / "pack.sh").read_text()
    assert 'exec "$here/../../tools/pack-charm.sh" "$here" "$@"' in wrapper  # the shared script, for this folder
    shared = CHARM_DIR.parents[1] / "tools" / "pack-charm.sh"
    assert '--wheel-dir "$here/wheels"' in shared.read_text()
    for script in (CHARM_DIR / "pack.sh", shared):
        assert script.stat().st_mode & 0o111, script


def test_requirements_pin_everything_the_charm_needs_at_run_time():
    """charm-strict-dependencies installs with --no-deps: every dependency must be listed, pinned.

    The runner's ``s3`` extra included: the charm configures an ``s3`` sink (``s3-endpoint-url``).
    """
    pinned = {}
    for line in REQUIREMENTS:
        if not line.startswith("./"):
            requirement = Requirement(line)
            assert str(requirement.specifier).startswith("=="), line
            pinned[_name(requirement.name)] = requirement
    needed: set[str] = set()
    todo = ["dwellir-harvester-charm", "dwellir-harvester"]
    while todo:
        distribution = todo.pop()
        extra = "s3" if distribution == "dwellir-harvester" else ""
        for text in importlib.metadata.requires(distribution) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
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


def test_charmcraft_reads_the_file_as_written():
    """What the charm-lint step runs: charmcraft's own reading of charmcraft.yaml."""
    charmcraft = shutil.which("charmcraft") or str(Path(sys.executable).with_name("charmcraft"))
    proc = subprocess.run(
        [charmcraft, "expand-extensions"], cwd=CHARM_DIR, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    expanded = yaml.safe_load(proc.stdout)
    assert expanded["actions"] == CHARMCRAFT["actions"]
    assert expanded["config"] == CHARMCRAFT["config"]
    assert expanded["subordinate"] is True
    assert expanded["requires"] == CHARMCRAFT["requires"]

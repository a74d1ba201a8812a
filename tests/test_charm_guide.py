"""docs/charm-authors.md cannot drift from the code: every code block of it is run or checked.

Each block's marker (``tools/sync_guide.py`` lists them) says what it is. The guide's files make a
charm in a folder outside this repository, whose own tests then run with this suite's Python (where
the packages are installed as a charm author installs them) and nothing of the repository on the
path: that is the guide's promise, a new charm with passing tests from the guide alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shlex
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import yaml

from tests.support import outside_environment

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sync_guide", REPO / "tools" / "sync_guide.py")
assert _spec is not None and _spec.loader is not None
sync_guide = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_guide)

GUIDE = sync_guide.GUIDE.read_text(encoding="utf-8")
BLOCKS = list(sync_guide.blocks(GUIDE))
APP = "my-node"


def of_kind(kind: str) -> list:
    return [block for block in BLOCKS if block.kind == kind]


def sh(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=outside_environment(), capture_output=True, text=True, timeout=timeout
    )


def write_charm(root: Path, *, variant: bool = False) -> Path:
    """The charm the guide's file blocks make (and, with ``variant``, its variant blocks on top)."""
    for block in of_kind("file") + (of_kind("variant") if variant else []):
        path = root / block.arg.split()[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        if block.kind == "variant" and path.suffix == ".yaml" and path.exists():
            merged = yaml.safe_load(path.read_text()) | yaml.safe_load(block.text)
            path.write_text(yaml.safe_dump(merged, sort_keys=False))
        else:
            path.write_text(block.text)
    for path in [root, *root.rglob("*")]:  # as a charm is checked out and packed: not writable by others
        path.chmod(0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)
    return root


@pytest.fixture(scope="module")
def guide_charm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_charm(tmp_path_factory.mktemp("outside") / APP)
    assert not root.resolve().is_relative_to(REPO)
    return root


def test_every_code_block_is_marked_with_what_it_is():
    assert len(BLOCKS) == sync_guide.fence_count(GUIDE), "a code block of the guide has no <!-- guide: ... --> marker"
    assert {block.kind for block in BLOCKS} == {"file", "variant", "run", "output", "not run"}
    for block in of_kind("not run"):
        assert block.arg.startswith("(") and block.arg.endswith(")"), "say why the block cannot run here"


def test_the_guides_files_are_the_templates_files():
    """The guide shows the template whole; python3 tools/sync_guide.py writes them in."""
    shown = {block.arg for block in of_kind("file")}
    template = sync_guide.TEMPLATE
    files = {
        str(p.relative_to(template))
        for p in template.rglob("*")
        if p.is_file()
        and p.name != "README.md"
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(template).parts)
    }
    assert shown == files, "the guide shows every file of the template (but its README and hidden files)"
    assert sync_guide.synced(GUIDE) == GUIDE, "run python3 tools/sync_guide.py"


def test_the_run_blocks_pass_in_a_charm_made_from_the_guide_alone(guide_charm):
    """The standalone harness and the charm's own tests, as the guide runs them."""
    commands = [line for block in of_kind("run") for line in block.text.splitlines() if line.strip()]
    assert any("dwellir_harvester.lib.run" in c for c in commands) and "python -m pytest -q" in commands
    for command in commands:
        result = sh(command, guide_charm)
        assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        if "dwellir_harvester.lib.run" in command:
            assert json.loads(result.stdout)["meta"]["status"] == "success"
        else:
            assert " passed" in result.stdout and "failed" not in result.stdout


def test_the_variant_blocks_pass_their_own_test(tmp_path):
    root = write_charm(tmp_path / APP, variant=True)
    tests = [block.arg for block in of_kind("variant") if block.arg.startswith("tests/")]
    assert tests
    result = sh(f"python -m pytest -q {' '.join(tests)}", root)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-3000:]}"


INSTALL = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, "src")
    from ops import testing
    from dwellir_harvester.charm.testing import Sandbox, subclass
    import charm

    sandbox = Sandbox(sys.argv[1])
    charm_type = next(c for c in vars(charm).values() if isinstance(c, type) and c.__module__ == "charm")
    charm_type = subclass(charm_type, harvester_args=sandbox.harvester_args())
    ctx = testing.Context(charm_type, charm_root=".", app_name="my-node")
    ctx.run(ctx.on.install(), testing.State(leader=True))
    dropin, snapshot = sandbox.dropin_path("my-node").read_text(), sandbox.read_snapshot("my-node")
    print(json.dumps({"drop-in": dropin, "snapshot": snapshot}))
    """
)


def test_the_output_blocks_are_what_the_charm_writes(guide_charm, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", INSTALL, str(tmp_path / "machine")],
        cwd=guide_charm,
        env=outside_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads(result.stdout)
    [dropin] = [block for block in of_kind("output") if block.arg == "drop-in"]
    shown, actual = yaml.safe_load(dropin.text), yaml.safe_load(written["drop-in"])
    assert list(shown) == list(actual)
    assert shown["collectors"] == actual["collectors"]
    comments = [line for line in written["drop-in"].splitlines() if line.startswith("#")]
    assert [line for line in dropin.text.splitlines() if line.startswith("#")][1:] == comments[1:]
    [snapshot] = [block for block in of_kind("output") if block.arg == "snapshot"]
    shown = json.loads(snapshot.text)
    assert list(shown) == list(written["snapshot"])
    assert list(shown["topology"]) == list(written["snapshot"]["topology"])


def test_the_juju_commands_name_the_declared_action_and_params():
    """What cannot run here is checked against what Juju would check it against."""
    declared = yaml.safe_load(next(b.text for b in of_kind("file") if b.arg == "charmcraft.yaml"))["actions"]
    runs = [
        shlex.split(line.split("|")[0])
        for block in of_kind("not run")
        for line in block.text.splitlines()
        if line.startswith("juju run ")
    ]
    assert len(runs) >= 3
    for words in runs:
        action = declared[words[3]]
        for word in words[4:]:
            if word.startswith("-") or word == "json":
                continue
            key, value = word.split("=", 1)
            spec = action["params"][key]
            if spec["type"] == "boolean":
                assert value in ("true", "false")
            elif spec["type"] == "number":
                float(value)


def test_the_install_commands_name_this_repositorys_distributions_and_extras():
    import tomllib

    blocks = "\n".join(block.text for block in of_kind("not run"))
    project = tomllib.loads((REPO / "charm-helpers" / "pyproject.toml").read_text())["project"]
    loader = importlib.machinery.SourceFileLoader("set_version", str(REPO / "tools" / "set-version"))
    set_version = types.ModuleType(loader.name)
    sys.modules[loader.name] = set_version  # its dataclass looks its module up
    try:
        loader.exec_module(set_version)
    finally:
        del sys.modules[loader.name]
    release = set_version.Version.parse((REPO / "VERSION").read_text().strip())
    assert f"'{project['name']}[testing]{release.user_range}'" in blocks
    assert "testing" in project["optional-dependencies"]
    assert "./harvester-lib ./harvester ./charm-helpers" in blocks
    assert (
        "DWELLIR_HARVESTER_WHEELS" in blocks
        and "DWELLIR_HARVESTER_WHEELS" in (sync_guide.TEMPLATE / "pack.sh").read_text()
    )

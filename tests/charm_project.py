"""Checks of a charm's project folder that every charm of this repository must pass.

Both charms' ``tests/unit/test_declarations.py`` use :class:`CharmProject`: what charmcraft, Juju,
``pack.sh`` and pip (``charm-strict-dependencies``) expect of ``charmcraft.yaml`` and
``requirements.txt``, and the action declaration the charm authors' guide tells them to copy.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
#: This repository's packages, in the order requirements.txt names their wheels.
PACKAGES = ("harvester-lib", "harvester", "charm-helpers")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def guide_snippet() -> dict[str, Any]:
    """The ``run-collectors`` declaration docs/charm-authors.md tells charm authors to copy, exactly."""
    guide = (REPO / "docs" / "charm-authors.md").read_text()
    section = guide.split("## 3. Declare the charm and the action", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    loaded: dict[str, Any] = yaml.safe_load(block.group(1))
    return loaded


class CharmProject:
    """One charm's folder: its ``charmcraft.yaml``, ``requirements.txt``, ``src/`` and ``pack.sh``."""

    def __init__(self, charm_dir: Path) -> None:
        self.dir = charm_dir
        self.charmcraft: dict[str, Any] = yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())
        lines = [line.strip() for line in (charm_dir / "requirements.txt").read_text().splitlines()]
        #: The requirements, without comments and pip's options (``--find-links ./wheels``).
        self.requirements = [line for line in lines if line and not line.startswith(("#", "-"))]
        #: pip's options in the file.
        self.pip_options = [line for line in lines if line.startswith("-")]

    def config_keys_read(self) -> set[str]:
        """Every option the charm's code reads: ``config.get("x")``, ``config["x"]``, ``f(config, "x")``."""
        found: set[str] = set()
        for path in (self.dir / "src").glob("*.py"):
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

    def check_wheels(self) -> None:
        """``requirements.txt`` names exactly the wheels the shared pack script builds for this folder."""
        wheels = [line for line in self.requirements if line.startswith("./wheels/")]
        expected = []
        for folder in PACKAGES:
            project = (REPO / folder / "pyproject.toml").read_text()
            match = re.search(r'^name = "([^"]+)"', project, re.M)
            assert match is not None
            version = importlib.metadata.version(match.group(1))
            expected.append(f"./wheels/{match.group(1).replace('-', '_')}-{version}-py3-none-any.whl")
        assert wheels == expected
        wrapper = (self.dir / "pack.sh").read_text()
        assert 'exec "$here/../../tools/pack-charm.sh" "$here" "$@"' in wrapper  # the shared script, for this folder
        shared = REPO / "tools" / "pack-charm.sh"
        assert '--wheel-dir "$here/wheels"' in shared.read_text()
        for script in (self.dir / "pack.sh", shared):
            assert script.stat().st_mode & 0o111, script

    def check_find_links(self) -> None:
        """``requirements.txt`` takes this repository's packages from ``wheels/`` or the index, pack.sh fills it.

        The charm's folder works when copied anywhere: ``--find-links ./wheels`` and ranges of the
        released versions that admit this checkout's, and a ``pack.sh`` of its own that copies the
        wheels ``DWELLIR_HARVESTER_WHEELS`` names into ``wheels/``.
        """
        from packaging.requirements import Requirement

        assert self.pip_options == ["--find-links ./wheels"], self.pip_options
        own = [Requirement(line) for line in self.requirements if _name(line).startswith("dwellir-harvester")]
        assert own, "requirements.txt names none of this repository's packages"
        for requirement in own:
            version = importlib.metadata.version(requirement.name)
            assert requirement.specifier.contains(version), (str(requirement), version)
        script = self.dir / "pack.sh"
        text = script.read_text()
        assert script.stat().st_mode & 0o111, script
        assert "../" not in text, "pack.sh reaches outside the charm's folder"
        assert 'cp "$DWELLIR_HARVESTER_WHEELS"/*.whl wheels/' in text
        assert "chmod -R go-w src collectors" in text

    def check_pins(self, extras: Mapping[str, str] | None = None, needs: tuple[str, ...] = ()) -> None:
        """Every run-time dependency is listed, pinned (``charm-strict-dependencies`` installs with ``--no-deps``).

        This repository's own packages may be named by a range instead (``check_find_links``).

        Args:
            extras: the extra of a distribution the charm needs too (``{"dwellir-harvester": "s3"}``).
            needs: the distributions whose dependencies the charm needs; default: the charm
                helpers and the runner.
        """
        from packaging.requirements import Requirement

        extras = extras or {}
        pinned = {}
        for line in self.requirements:
            if not line.startswith("./"):
                requirement = Requirement(line)
                if not _name(requirement.name).startswith("dwellir-harvester"):
                    assert str(requirement.specifier).startswith("=="), line
                pinned[_name(requirement.name)] = requirement
        needed: set[str] = set()
        todo = list(needs or ("dwellir-harvester-charm", "dwellir-harvester"))
        while todo:
            distribution = todo.pop()
            for text in importlib.metadata.requires(distribution) or []:
                requirement = Requirement(text)
                extra = extras.get(distribution, "")
                if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
                    continue
                name = _name(requirement.name)
                if name not in needed:
                    needed.add(name)
                    todo.append(name)
        needed -= {"dwellir-harvester-lib"}
        assert needed <= set(pinned), sorted(needed - set(pinned))
        part = self.charmcraft["parts"]["charm"]
        assert {_name(b) for b in part["charm-binary-python-packages"]} <= set(pinned)
        assert part["charm-strict-dependencies"] is True

    def expanded(self) -> dict[str, Any]:
        """``charmcraft.yaml`` as charmcraft itself reads it (``charmcraft expand-extensions``)."""
        charmcraft = shutil.which("charmcraft") or str(Path(sys.executable).with_name("charmcraft"))
        proc = subprocess.run(
            [charmcraft, "expand-extensions"], cwd=self.dir, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        loaded: dict[str, Any] = yaml.safe_load(proc.stdout)
        assert loaded["actions"] == self.charmcraft["actions"]
        assert loaded.get("config") == self.charmcraft.get("config")
        return loaded

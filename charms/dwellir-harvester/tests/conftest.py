"""What the subordinate charm's tests share.

- The charm's ``src/charm.py`` and ``src/workload.py`` are loaded under names of their own
  (``dwellir_harvester_sub_charm``, ``dwellir_harvester_sub_workload``): the example charm's
  tests run in the same pytest process with modules named ``charm`` (and ``workload``), and
  ops[testing] finds a charm's ``charmcraft.yaml`` through its class's module. The ``sub``
  fixture hands them to the tests.
- ``getent`` and ``useradd`` are the stand-ins of ``tests/fakes/usertools.py``, installed as real
  executables on ``PATH`` by :func:`install_user_tools`.
- No test may touch the machine's real harvester paths, whoever runs the suite (root included).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHARM_DIR = Path(__file__).resolve().parents[1]
REPO = CHARM_DIR.parents[1]
USERTOOLS = Path(__file__).resolve().parent / "fakes" / "usertools.py"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support import (  # noqa: E402 - the repository root is on sys.path only now
    charm_environment,  # noqa: F401 - autouse fixtures of every test here
    never_touch_the_real_machine,  # noqa: F401
    restore_logging,  # noqa: F401
)


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_charm() -> tuple[ModuleType, ModuleType]:
    """``workload`` and ``charm`` under unique names; ``charm``'s ``import workload`` gets this one."""
    workload = _load("dwellir_harvester_sub_workload", CHARM_DIR / "src" / "workload.py")
    saved = sys.modules.get("workload")
    sys.modules["workload"] = workload
    try:
        charm = _load("dwellir_harvester_sub_charm", CHARM_DIR / "src" / "charm.py")
    finally:
        if saved is None:
            del sys.modules["workload"]
        else:
            sys.modules["workload"] = saved
    return workload, charm


WORKLOAD, CHARM = _load_charm()


def install_user_tools(bin_dir: Path, state_path: Path) -> None:
    """Put ``getent`` and ``useradd`` stand-ins in ``bin_dir``, backed by the state file ``state_path``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("getent", "useradd"):
        command = [sys.executable, "-I", "-S", str(USERTOOLS), str(state_path), tool]
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n', encoding="utf-8")
        script.chmod(0o755)


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the user tools' state file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any]:
    """The user tools' state: ``users``, ``calls`` and ``useradd_error``."""
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


class Sub:
    """The charm's modules and helpers (with --import-mode=importlib a conftest is not importable)."""

    CHARM_DIR = CHARM_DIR
    REPO = REPO
    charm = CHARM
    workload = WORKLOAD
    install_user_tools = staticmethod(install_user_tools)
    read_state = staticmethod(read_state)
    write_state = staticmethod(write_state)


@pytest.fixture(scope="session")
def sub() -> type[Sub]:
    """The charm's modules (``sub.charm``, ``sub.workload``) and the shared helpers."""
    return Sub

"""Run the charm as Juju runs it, without a controller: a packed charm's layout, ``dispatch``, hook tools.

How the charm is laid out (once per session for the venv, once per test for the rest), as
``charmcraft pack`` lays it out:

- ``metadata.yaml``, ``actions.yaml``, ``config.yaml``: split out of ``charmcraft.yaml``;
- ``src/``, ``collectors/`` copied from the charm, ``src/charm.py`` with its ``#!/usr/bin/env
  python3`` line;
- ``src/on_test_machine.py``, the one file the tests add: the charm subclassed with every path
  under the test's machine root (its ``paths`` class attribute, as the unit tests set it), so
  that nothing reaches the real machine; ``dispatch`` is charmcraft's own script for that
  entrypoint (``charm-entrypoint: src/on_test_machine.py``: ``PYTHONPATH=lib:venv exec
  ./src/on_test_machine.py``);
- ``venv/``: the charm's dependencies, built without the network: this repository's three
  packages installed by pip from their folders (``--no-index --no-deps --no-build-isolation
  --target``), and the installed files of every other distribution they need (ops, PyYAML,
  charmlibs-systemd, jsonschema and its dependencies, psutil, prometheus-client, …: the
  closure of their requirements) copied from this environment through
  ``importlib.metadata.distribution(name).files``. Tests link to one session-wide copy.

``python3`` on the unit's ``PATH`` is this environment's base interpreter run with ``-S``: no
site-packages at all, so everything the charm and the daemon import must come from ``venv/`` (as
on a real unit, where the venv's compiled modules were built for the system's Python).

The hook tools (``action-get``, ``action-set``, ``action-log``, ``action-fail``, ``config-get``,
``is-leader``, ``juju-log``, ``status-set``, ``secret-get``, ``relation-ids``,
``application-version-set``) and ``systemctl``, ``getent``, ``useradd`` are the stand-ins of
``tests/fakes/hooktools.py``: real executables, backed by one JSON state file per test.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
import yaml

CHARM_DIR = Path(__file__).resolve().parents[2]
REPO = CHARM_DIR.parents[1]
PACKAGES = ("harvester-lib", "harvester", "charm-helpers")
OWN_DISTRIBUTIONS = {"dwellir-harvester-lib", "dwellir-harvester", "dwellir-harvester-charm"}
# charmcraft's DISPATCH_CONTENT, for the entrypoint the tests give the charm.
ENTRYPOINT = "src/on_test_machine.py"
DISPATCH = (
    f'#!/bin/sh\n\nJUJU_DISPATCH_PATH="${{JUJU_DISPATCH_PATH:-$0}}" PYTHONPATH=lib:venv \\\n  exec ./{ENTRYPOINT}\n'
)
ON_TEST_MACHINE = '''#!/usr/bin/env python3
"""The charm as the end-to-end tests run it: every path it writes under the test's machine root."""

from pathlib import Path

import ops
import workload
from charm import HarvesterExampleCharm


class OnTestMachine(HarvesterExampleCharm):
    paths = workload.Paths(Path({root!r}))


if __name__ == "__main__":
    ops.main(OnTestMachine)
'''
HOOK_TOOLS = (
    "action-get",
    "action-set",
    "action-log",
    "action-fail",
    "config-get",
    "is-leader",
    "juju-log",
    "status-set",
    "secret-get",
    "relation-ids",
    "application-version-set",
)
MACHINE_TOOLS = ("systemctl", "getent", "useradd")
APP = "harvester-example"
UNIT = f"{APP}/0"
MODEL_UUID = "8ad3c5c2-3a0c-4c47-9f0a-7f4a6c1d2e3f"


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def runtime_distributions() -> list[str]:
    """Every distribution the charm needs at run time besides this repository's own."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo = sorted(OWN_DISTRIBUTIONS)
    while todo:
        for text in importlib.metadata.requires(todo.pop()) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = _name(requirement.name)
            if name not in found and name not in OWN_DISTRIBUTIONS:
                found[name] = requirement.name
                todo.append(requirement.name)
    return sorted(found.values())


def build_venv(venv: Path) -> list[str]:
    """The charm's ``venv/``, built from this checkout and this environment, without the network."""
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation"),
            *("--target", str(venv), *(str(REPO / p) for p in PACKAGES)),
        ],
        check=True,
        timeout=300,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
    )
    copied = runtime_distributions()
    for name in copied:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or []:
            if file.parts[0] == "..":
                continue  # console scripts and the like live outside site-packages
            source = Path(str(distribution.locate_file(file)))
            if source.is_file():
                target = venv / str(file)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    return copied


@pytest.fixture(scope="session")
def packed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``venv/`` for the session (building it is the slow part)."""
    venv = tmp_path_factory.mktemp("packed") / "venv"
    build_venv(venv)
    return venv


def base_python() -> str:
    """The interpreter this environment's venv (if any) was made from."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class HookRun:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0


@dataclass
class ActionRun:
    """What ``juju run <unit> run-collectors --format json`` would print for the unit."""

    status: str
    results: dict[str, str]
    message: str | None
    log: list[str]
    hook: HookRun

    def as_juju_prints_it(self) -> dict[str, Any]:
        task: dict[str, Any] = {"id": "2", "results": self.results, "status": self.status}
        if self.message:
            task["message"] = self.message
        return {UNIT: task}


class ParamsRefusedError(Exception):
    """Juju refused the action's parameters before running the hook."""


@dataclass
class Unit:
    """One unit of the charm on a machine under ``root``, driven through ``dispatch``."""

    charm: Path
    root: Path
    bin: Path
    state_path: Path
    runs: list[HookRun] = field(default_factory=list)
    ParamsRefused: ClassVar[type[Exception]] = ParamsRefusedError

    # --- the state the stand-ins share ---------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with open(self.state_path, encoding="utf-8") as f:
            result: dict[str, Any] = json.load(f)
        return result

    def _update(self, **changes: Any) -> None:
        state = self.state()
        state.update(changes)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)

    # --- what an operator does with the juju client ------------------------------------------

    def config(self, **values: Any) -> None:
        """``juju config harvester-example key=value ...`` (keys with '_' for '-'); Juju checks types."""
        options = yaml.safe_load((self.charm / "config.yaml").read_text())["options"]
        config = dict(self.state()["config"])
        for key, value in values.items():
            name = key.replace("_", "-")
            spec = options[name]  # an undeclared option is refused
            if value is None:
                config.pop(name, None)
                if "default" in spec:
                    config[name] = spec["default"]
                continue
            kind = spec["type"]
            ok = {
                "int": isinstance(value, int) and not isinstance(value, bool),
                "string": isinstance(value, str),
                "boolean": isinstance(value, bool),
                "secret": isinstance(value, str) and re.match(r"^secret:[0-9a-v]{20}$", value) is not None,
            }[kind]
            assert ok, f"juju config would refuse {name}={value!r} (type {kind})"
            config[name] = value
        self._update(config=config)

    def add_secret(self, content: dict[str, str], *, granted: bool = True) -> str:
        """``juju add-secret`` (and ``juju grant-secret`` unless ``granted=False``): the secret's URI."""
        uri = "secret:" + "".join(secrets.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(20))
        state = self.state()
        state["secrets"][uri] = {"content": content, "granted": granted}
        self._update(secrets=state["secrets"])
        return uri

    # --- what the unit agent does ------------------------------------------------------------

    def environment(self, dispatch_path: str, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "JUJU_UNIT_NAME": UNIT,
            "JUJU_MODEL_NAME": "prod",
            "JUJU_MODEL_UUID": MODEL_UUID,
            "JUJU_MACHINE_ID": "0",
            "JUJU_CHARM_DIR": str(self.charm),
            "CHARM_DIR": str(self.charm),
            "JUJU_VERSION": "3.6.0",
            "JUJU_DISPATCH_PATH": dispatch_path,
            "JUJU_CONTEXT_ID": f"{UNIT}-{dispatch_path.rsplit('/', 1)[-1]}-{secrets.randbelow(10**18)}",
            "JUJU_AGENT_SOCKET_ADDRESS": "@/var/lib/juju/agents/unit-harvester-example-0/agent.socket",
            "JUJU_AGENT_SOCKET_NETWORK": "unix",
            "JUJU_API_ADDRESSES": "10.0.0.1:17070",
            "JUJU_AVAILABILITY_ZONE": "",
            "JUJU_PRINCIPAL_UNIT": "",
            **extra,
        }

    def _dispatch(self, dispatch_path: str, **extra: str) -> HookRun:
        started = time.monotonic()
        proc = subprocess.run(
            [str(self.charm / "dispatch")],
            cwd=self.charm,
            env=self.environment(dispatch_path, **extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        run = HookRun(dispatch_path, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        self.runs.append(run)
        return run

    def hook(self, name: str, **extra: str) -> HookRun:
        """Run one hook; a hook that errors puts a unit in error, so it fails the test."""
        run = self._dispatch(f"hooks/{name}", JUJU_HOOK_NAME=name, **extra)
        assert run.returncode == 0, f"hook {name} failed:\n{run.stderr[-4000:]}"
        return run

    def deploy(self) -> None:
        """What Juju runs on a new unit: install, leader-elected, config-changed, start."""
        for name in ("install", "leader-elected", "config-changed", "start"):
            self.hook(name)

    def run_action(self, name: str = "run-collectors", **params: Any) -> ActionRun:
        """``juju run harvester-example/0 <name> key=value ...``: Juju checks the params, then runs it."""
        actions = yaml.safe_load((self.charm / "actions.yaml").read_text())
        spec = actions[name]
        schema = {
            "type": "object",
            "properties": spec.get("params", {}),
            "additionalProperties": spec.get("additionalProperties", True),
        }
        try:
            jsonschema.Draft7Validator(schema).validate(params)
        except jsonschema.ValidationError as err:
            raise ParamsRefusedError(err.message) from err
        full = {key: p["default"] for key, p in spec.get("params", {}).items() if "default" in p}
        full.update(params)
        self._update(action={"name": name, "params": full, "results": {}, "log": [], "failed": None})
        hook = self._dispatch(f"actions/{name}", JUJU_ACTION_NAME=name, JUJU_ACTION_UUID=str(uuid.uuid4()))
        action = self.state()["action"]
        self._update(action=None)
        if hook.returncode != 0:
            return ActionRun("failed", action["results"], f"exit status {hook.returncode}", action["log"], hook)
        status = "failed" if action["failed"] is not None else "completed"
        return ActionRun(status, action["results"], action["failed"], action["log"], hook)

    # --- what the tests look at --------------------------------------------------------------

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def tools_called(self) -> list[str]:
        return sorted({call[0] for call in self.state()["calls"]})

    def logs(self) -> list[list[str]]:
        result: list[list[str]] = self.state()["logs"]
        return result

    def files(self) -> dict[str, tuple[int, int]]:
        found = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                st = os.stat(os.path.join(dirpath, name))
                found[os.path.relpath(os.path.join(dirpath, name), self.root)] = (st.st_ino, st.st_mtime_ns)
        return found

    def daemon_pids(self) -> list[int]:
        result: list[int] = self.state()["systemd"]["started"]
        return result


def lay_out_charm(charm: Path, venv: Path, root: Path) -> None:
    """The charm as ``charmcraft pack`` lays it out (the venv linked, not copied), run on ``root``."""
    project = yaml.safe_load((CHARM_DIR / "charmcraft.yaml").read_text())
    charm.mkdir(mode=0o755)
    metadata = {key: project[key] for key in ("name", "summary", "description") if key in project}
    if "title" in project:
        metadata["display-name"] = project["title"]
    for key in ("requires", "provides", "peers", "assumes", "subordinate"):
        if key in project:
            metadata[key] = project[key]
    (charm / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    (charm / "actions.yaml").write_text(yaml.safe_dump(project["actions"], sort_keys=False))
    (charm / "config.yaml").write_text(yaml.safe_dump(project["config"], sort_keys=False))
    (charm / "manifest.yaml").write_text(
        yaml.safe_dump({"bases": [{"name": "ubuntu", "channel": "24.04", "architectures": ["amd64"]}]})
    )
    (charm / "dispatch").write_text(DISPATCH)
    (charm / "dispatch").chmod(0o755)
    shutil.copytree(CHARM_DIR / "src", charm / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (charm / ENTRYPOINT).write_text(ON_TEST_MACHINE.format(root=str(root)), encoding="utf-8")
    executable = {"charm.py", Path(ENTRYPOINT).name}
    for name in executable:
        (charm / "src" / name).chmod(0o755)
    shutil.copytree(CHARM_DIR / "collectors", charm / "collectors", ignore=shutil.ignore_patterns("__pycache__"))
    for directory in (charm / "src", charm / "collectors"):
        directory.chmod(0o755)
        for path in directory.iterdir():
            if path.name not in executable:
                path.chmod(0o644)
    (charm / "venv").symlink_to(venv, target_is_directory=True)


def _stop_daemons(pids: list[int]) -> None:
    """Stop what the systemctl stand-in started for a test and is still running."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError):
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def unit(tmp_path: Path, packed_venv: Path, kit: Any) -> Iterator[Unit]:
    """A fresh machine and unit: the charm laid out, no config set yet, stand-ins on PATH."""
    charm = tmp_path / "charm"
    root = tmp_path / "machine"
    root.mkdir()
    lay_out_charm(charm, packed_venv, root)
    bin_dir = tmp_path / "bin"
    state_path = tmp_path / "juju.json"
    bin_dir.mkdir()
    python = bin_dir / "python3"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(base_python())} -S "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    defaults = {
        name: spec["default"]
        for name, spec in yaml.safe_load((charm / "config.yaml").read_text())["options"].items()
        if "default" in spec
    }
    state = kit.new_state(root, config=defaults)
    state["machine"]["python"] = str(python)
    kit.write_state(state_path, state)
    kit.install_tools(bin_dir, state_path, HOOK_TOOLS + MACHINE_TOOLS)
    made = Unit(charm, root, bin_dir, state_path)
    try:
        yield made
    finally:
        _stop_daemons(made.daemon_pids())

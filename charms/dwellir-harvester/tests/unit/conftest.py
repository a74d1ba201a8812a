"""Fixtures for the charm's ops[testing] (Scenario) tests.

Each test gets a machine of its own in ``tmp_path``, handed to the charm through its two class
attributes (``dwellir_harvester.charm.testing.subclass``):

- ``paths``: every path the charm reads or writes, under ``tmp_path/machine``;
- ``systemd``: a ``FakeSystemd`` that also knows the unit directory: ``daemon_reload`` loads the
  unit files the charm wrote (and drops removed ones), and starting, restarting or reloading a
  unit whose file changed since is recorded as systemd's "changed on disk" warning;
- ``getent`` and ``useradd`` on ``PATH`` are the stand-ins of ``tests/fakes/usertools.py`` (a
  machine without the service user until the charm creates it);
- the charm runs from ``tmp_path/charm`` (ops[testing] reads its metadata from charmcraft.yaml).

``machine.add_principal(app, collectors)`` lays out what a principal's ``Harvester`` would: a
plugin dir of the principal's own and its drop-in in ``config.d/``.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops import testing

from dwellir_harvester.charm.testing import FakeSystemd, subclass

APP = "dwellir-harvester"
SERVICE = "dwellir-harvester"
MODEL = testing.Model(name="prod", uuid="8ad3c5c2-3a0c-4c47-9f0a-7f4a6c1d2e3f")


class MachineSystemd(FakeSystemd):
    """``FakeSystemd`` plus the unit directory: units exist once their file is loaded."""

    def __init__(self, unit_dir: Path) -> None:
        super().__init__({})
        self.unit_dir = unit_dir
        self.definitions: dict[str, str] = {}
        self.warnings: list[str] = []

    def _on_disk(self) -> dict[str, str]:
        if not self.unit_dir.is_dir():
            return {}
        return {p.stem: p.read_text() for p in self.unit_dir.glob("*.service")}

    def daemon_reload(self) -> bool:
        result = super().daemon_reload()
        on_disk = self._on_disk()
        for name in list(self.services):
            if name not in on_disk and self.services[name].state != "active":
                self.uninstall(name)
        for name in on_disk:
            if name not in self.services:
                self.install(name, "inactive")
        self.definitions = on_disk
        return result

    def _fresh(self, name: str) -> None:
        on_disk = self._on_disk().get(name.removesuffix(".service"))
        if on_disk is not None and on_disk != self.definitions.get(name.removesuffix(".service")):
            self.warnings.append(f"{name}: unit file changed on disk; run 'systemctl daemon-reload'")

    def service_start(self, *args: str) -> bool:
        for name in args:
            self._fresh(name)
        return super().service_start(*args)

    def service_restart(self, *args: str) -> bool:
        for name in args:
            self._fresh(name)
        return super().service_restart(*args)

    def service_reload(self, service_name: str, restart_on_failure: bool = False) -> bool:
        self._fresh(service_name)
        return super().service_reload(service_name, restart_on_failure)

    def mutations(self) -> list[tuple[Any, ...]]:
        """The calls that change something (everything but the two queries)."""
        return [c for c in self.calls if c[0] not in ("service_running", "service_failed")]


class Machine:
    """The unit's machine under ``root``: its paths, its user database and its systemd."""

    def __init__(self, root: Path, state_path: Path, systemd: MachineSystemd, sub: Any) -> None:
        self.root = root
        self.paths = sub.workload.Paths(root)
        self.state_path = state_path
        self.systemd = systemd
        self._sub = sub

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._sub.read_state(self.state_path)
        return result

    def tool_calls(self) -> list[list[str]]:
        result: list[list[str]] = self.state()["calls"]
        return result

    def fail_useradd(self, message: str) -> None:
        """Make ``useradd`` fail with ``message``, as it can on a real machine."""
        state = self.state()
        state["useradd_error"] = message
        self._sub.write_state(self.state_path, state)

    def add_user(self, name: str, gid: int | None = None) -> None:
        state = self.state()
        state["users"][name] = {"uid": 995, "gid": os.getgid() if gid is None else gid, "home": "/", "shell": "/x"}
        self._sub.write_state(self.state_path, state)

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file under the root, with what a rewrite changes (inode, mtime)."""
        found = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                st = os.stat(os.path.join(dirpath, name))
                found[os.path.relpath(os.path.join(dirpath, name), self.root)] = (st.st_ino, st.st_mtime_ns)
        return found

    def add_principal(self, app: str, plugins: dict[str, str], options: str = "", **dropin: Any) -> Path:
        """A principal's plugin dir and its drop-in, as its Harvester writes them.

        ``plugins`` maps each collector name to the body of its ``collect()``; ``options`` are the
        keyword arguments of every collector's constructor (``rpc_url=''``); ``dropin`` adds or
        replaces keys of the drop-in.
        """
        directory = self.root / "var" / "lib" / "juju" / "charms" / app / "collectors"
        directory.mkdir(parents=True, exist_ok=True)
        for name, body in plugins.items():
            source = textwrap.dedent(
                f"""\
                from dwellir_harvester.lib import CollectorFailedError, CollectorPartialError, GenericCollector


                class Collector(GenericCollector):
                    NAME = {name!r}
                    VERSION = "1.0.0"

                    def __init__(self, {options}):
                        pass

                    def collect(self):
                        {body}
                """
            )
            (directory / f"{name.replace('-', '_')}.py").write_text(source, encoding="utf-8")
        self.paths.config_dir.mkdir(parents=True, exist_ok=True)
        content = {"collectors": list(plugins), "collector_paths": [str(directory)]}
        content.update(dropin)
        path = self.paths.config_dir / f"{app}.yaml"
        path.write_text(yaml.safe_dump(content), encoding="utf-8")
        return path


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sub: Any) -> Machine:
    root = tmp_path / "machine"
    root.mkdir()
    state_path = tmp_path / "users.json"
    sub.write_state(state_path, {"users": {}, "calls": []})
    sub.install_user_tools(tmp_path / "bin", state_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return Machine(root, state_path, MachineSystemd(sub.workload.Paths(root).unit_file.parent), sub)


@pytest.fixture
def charm_root(tmp_path: Path) -> Path:
    root = tmp_path / "charm"
    root.mkdir()
    return root


def on_machine(machine: Machine, sub: Any) -> Any:
    """The charm with the machine's paths and systemd (its metadata still found from charmcraft.yaml)."""
    return subclass(sub.charm.DwellirHarvesterCharm, paths=machine.paths, systemd=machine.systemd)


def context(machine: Machine, sub: Any, charm_root: Path, unit_id: int = 0, app: str = APP) -> testing.Context[Any]:
    """The charm in Scenario on ``machine``, as unit ``unit_id`` of the application ``app``."""
    return testing.Context(on_machine(machine, sub), charm_root=charm_root, app_name=app, unit_id=unit_id)


@pytest.fixture
def ctx(charm_root: Path, machine: Machine, sub: Any) -> testing.Context[Any]:
    """The charm's unit 0 in Scenario on ``machine``, run from ``charm_root``."""
    return context(machine, sub, charm_root)


def state(**kwargs: Any) -> testing.State:
    """A State in one fixed model (Scenario makes up a new model name and UUID for every State)."""
    return testing.State(model=MODEL, **kwargs)


class Unit:
    """What the unit test modules share."""

    APP = APP
    SERVICE = SERVICE
    MODEL = MODEL
    state = staticmethod(state)
    context = staticmethod(context)


@pytest.fixture(scope="session")
def unit() -> type[Unit]:
    return Unit


@pytest.fixture
def run(ctx: testing.Context[Any]) -> Callable[..., testing.State]:
    """``run(event_name, state, **event_kwargs)``: run one hook and return the output state."""

    def go(event: str, before: testing.State | None = None, *args: Any, **kwargs: Any) -> testing.State:
        factory = getattr(ctx.on, event)
        return ctx.run(factory(*args, **kwargs), before if before is not None else state())

    return go

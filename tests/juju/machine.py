"""One Juju machine without a controller: packed charms, their units, the hook tools and systemd.

See the package docstring (``tests/juju/__init__.py``) for how a test uses it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import hooktools

REPO = Path(__file__).resolve().parents[2]
#: This repository's distributions, installed into every charm's venv from their folders.
PACKAGES = ("harvester-lib", "harvester", "charm-helpers")
OWN_DISTRIBUTIONS = {"dwellir-harvester-lib", "dwellir-harvester", "dwellir-harvester-charm"}
#: The entrypoint the kit gives every charm (charmcraft's ``charm-entrypoint``).
ENTRYPOINT = "src/on_test_machine.py"
#: charmcraft's DISPATCH_CONTENT, for that entrypoint.
DISPATCH = (
    f'#!/bin/sh\n\nJUJU_DISPATCH_PATH="${{JUJU_DISPATCH_PATH:-$0}}" PYTHONPATH=lib:venv \\\n  exec ./{ENTRYPOINT}\n'
)
MODEL_UUID = "8ad3c5c2-3a0c-4c47-9f0a-7f4a6c1d2e3f"
HOOKTOOLS = Path(hooktools.__file__).resolve()

# The charm as the kit runs it. Generic over the two patterns of docs/charm-authors.md, section 7:
# a charm with a ``paths`` class attribute (a dataclass with a ``root``) gets the machine's root
# there; a charm with ``harvester_args`` gets the Harvester's directories under that root, where
# ``dwellir_harvester.charm.testing.Sandbox`` puts them. ``systemd`` is left alone: on the kit's
# machine it is the real ``charmlibs.systemd``, which runs the machine's ``systemctl`` stand-in.
ON_TEST_MACHINE = '''#!/usr/bin/env python3
"""{charm_class} as the tests' Juju machine runs it: every path it writes under {root}."""

import dataclasses
from pathlib import Path

import ops
from charm import {charm_class} as Charm

ROOT = Path({root!r})
attributes = {{}}
if dataclasses.is_dataclass(getattr(Charm, "paths", None)):
    attributes["paths"] = dataclasses.replace(Charm.paths, root=ROOT)
if isinstance(getattr(Charm, "harvester_args", None), dict):
    from dwellir_harvester.charm.testing import Sandbox

    sandbox = Sandbox(ROOT).harvester_args()
    del sandbox["systemd"]  # the real charmlibs.systemd, which runs the machine's systemctl
    attributes["harvester_args"] = {{**Charm.harvester_args, **sandbox}}
if not attributes:
    raise SystemExit("{charm_class} has neither a paths dataclass nor harvester_args: it would write the real machine")
OnTestMachine = type(Charm.__name__, (Charm,), {{"__module__": Charm.__module__, **attributes}})

if __name__ == "__main__":
    ops.main(OnTestMachine)
'''
# Left out of a packed charm: charmcraft's own, and what .jujuignore files commonly add.
NEVER_PACKED = ("tests", "wheels", "build", "venv", "parts", "prime", "stage", "pack.sh", "*.charm", "__pycache__")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


# --- venvs --------------------------------------------------------------------------------------


#: The extras a charm's venv holds: the subordinate's requirements pin the runner's S3 client.
EXTRAS = ("", "s3")


def runtime_distributions() -> list[str]:
    """Every distribution this repository's packages need at run time (with ``EXTRAS``), besides themselves."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo = sorted(OWN_DISTRIBUTIONS)
    while todo:
        for text in importlib.metadata.requires(todo.pop()) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not any(marker.evaluate({"extra": extra}) for extra in EXTRAS):
                continue
            name = _name(requirement.name)
            if name not in found and name not in OWN_DISTRIBUTIONS:
                found[name] = requirement.name
                todo.append(requirement.name)
    return sorted(found.values())


def _pip_install(target: Path, sources: Sequence[Path]) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation"),
            *("--target", str(target), *(str(s) for s in sources)),
        ],
        check=True,
        timeout=300,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
    )


def build_venv(venv: Path) -> list[str]:
    """A charm's ``venv/`` as ``charmcraft pack`` builds it, from this checkout, without the network.

    This repository's three packages are installed by pip from their folders; every other
    distribution they need (the closure of their requirements) is copied from this environment
    through ``importlib.metadata``. Returns the names of the copied distributions.
    """
    _pip_install(venv, [REPO / p for p in PACKAGES])
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


class VenvCache:
    """Charm venvs for one test session: the common part is built once, extras once each.

    Args:
        directory: where the built venvs go (a session's temporary directory).
    """

    _sessions: dict[str, VenvCache] = {}

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._base: Path | None = None
        self._extras: dict[tuple[str, ...], Path] = {}

    @classmethod
    def for_session(cls, tmp_path_factory: Any) -> VenvCache:
        """The session's cache (one per pytest session, shared by every conftest that asks)."""
        key = str(tmp_path_factory.getbasetemp())
        if key not in cls._sessions:
            cls._sessions[key] = cls(tmp_path_factory.mktemp("juju-venvs"))
        return cls._sessions[key]

    def base(self) -> Path:
        """The venv every charm gets: this repository's packages and their dependencies."""
        if self._base is None:
            venv = self.directory / "base"
            build_venv(venv)
            self._base = venv
        return self._base

    def extras(self, sources: Sequence[Path]) -> Path:
        """A directory holding ``sources`` installed: project folders by pip, module files and packages copied."""
        key = tuple(str(Path(s).resolve()) for s in sources)
        if key not in self._extras:
            target = self.directory / ("extras-" + hashlib.sha256("\0".join(key).encode()).hexdigest()[:12])
            target.mkdir()
            projects = [
                Path(s) for s in key if (Path(s) / "pyproject.toml").exists() or (Path(s) / "setup.py").exists()
            ]
            if projects:
                _pip_install(target, projects)
            for source in (Path(s) for s in key if Path(s) not in projects):
                if source.is_dir():
                    shutil.copytree(source, target / source.name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(source, target / source.name)
            self._extras[key] = target
        return self._extras[key]

    def make(self, venv: Path, extras: Sequence[Path] = ()) -> None:
        """Make ``venv``: the base venv, plus ``extras`` that only this venv has.

        Without extras ``venv`` is a link to the base venv; with them it is a directory of links to
        the base venv's entries and the extras' (an extra may not shadow an entry of the base).
        """
        base = self.base()
        if not extras:
            venv.symlink_to(base, target_is_directory=True)
            return
        venv.mkdir()
        for entry in base.iterdir():
            (venv / entry.name).symlink_to(entry)
        for entry in self.extras(extras).iterdir():
            if entry.name == "bin":
                continue  # console scripts: not on a charm's import path
            if (venv / entry.name).exists():
                raise ValueError(f"the venv extra {entry.name} shadows an entry of the charm's base venv")
            (venv / entry.name).symlink_to(entry)


def base_python() -> str:
    """The interpreter this environment's venv (if any) was made from."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


# --- what the unit agent reports ----------------------------------------------------------------


@dataclass
class HookRun:
    """One run of ``dispatch``: what it printed and how it ended."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0


@dataclass
class ActionRun:
    """What ``juju run <unit> <action> --format json`` would print for the unit."""

    unit: str
    status: str
    results: dict[str, str]
    message: str | None
    log: list[str]
    hook: HookRun

    def as_juju_prints_it(self) -> dict[str, Any]:
        """``{unit: {"id", "results", "status"[, "message"]}}``, as Juju 3 prints it."""
        task: dict[str, Any] = {"id": "2", "results": self.results, "status": self.status}
        if self.message:
            task["message"] = self.message
        return {self.unit: task}


class ParamsRefusedError(Exception):
    """Juju refused the action's parameters before running the hook."""


@dataclass(frozen=True)
class Relation:
    """A relation between two applications on the machine: its id and each side's endpoint."""

    id: int
    endpoints: dict[str, str]  # application -> endpoint

    def ref(self, app: str) -> str:
        """``endpoint:id`` as ``app`` names it (``JUJU_RELATION_ID``)."""
        return f"{self.endpoints[app]}:{self.id}"


# --- the machine --------------------------------------------------------------------------------


def _pack_filter(project: Path) -> Callable[[str, list[str]], set[str]]:
    """What ``charmcraft pack`` leaves out of the charm's top level (its defaults and ``.jujuignore``)."""
    patterns = list(NEVER_PACKED)
    ignore = project / ".jujuignore"
    if ignore.exists():
        for raw in ignore.read_text().splitlines():
            line = raw.strip()
            if line and not line.startswith(("#", "!")):
                patterns.append(line.strip("/"))

    def leave_out(directory: str, names: list[str]) -> set[str]:
        top = Path(directory) == project
        return {
            n
            for n in names
            if n == "__pycache__"
            or (top and (n.startswith(".") or n == "charmcraft.yaml" or any(fnmatch.fnmatch(n, p) for p in patterns)))
        }

    return leave_out


class Machine:
    """A machine under ``directory``: one filesystem root, one systemd, one user database, many units.

    Args:
        directory: the test's own directory (``tmp_path``); the machine's root is ``<directory>/root``.
        venvs: the session's :class:`VenvCache`.
        model: the model's name.
    """

    def __init__(self, directory: Path, venvs: VenvCache, *, model: str = "prod") -> None:
        self.directory = directory
        self.root = directory / "root"
        self.root.mkdir(parents=True)
        self.venvs = venvs
        self.state_path = directory / "juju.json"
        self.bin = directory / "bin"  # the machine's python3: the base interpreter without site-packages
        self.bin.mkdir()
        python = self.bin / "python3"
        python.write_text(f'#!/bin/sh\nexec {shlex.quote(base_python())} -S "$@"\n', encoding="utf-8")
        python.chmod(0o755)
        self.python = python
        self.units: dict[str, Unit] = {}
        self._next_relation = 0
        self._write(
            {
                "machine": {"root": str(self.root), "gid": os.getgid(), "python": str(python)},
                "users": {},
                "systemd": {"units": {}, "warnings": [], "started": []},
                "model": {"name": model, "uuid": MODEL_UUID},
                "secrets": {},
                "relations": {},
                "units": {},
                "calls": [],
                "longest_arg": 0,
            }
        )

    # --- the state file ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The machine's state as the stand-ins left it (a copy)."""
        with open(self.state_path, encoding="utf-8") as f:
            result: dict[str, Any] = json.load(f)
        return result

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the state in place under the stand-ins' lock: ``machine.update(lambda s: ...)``."""
        import fcntl

        with open(str(self.state_path) + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.state()
            change(state)
            self._write(state)

    # --- deploying -----------------------------------------------------------------------------

    def deploy(
        self,
        charm_dir: Path,
        unit: str | None = None,
        *,
        venv_extras: Sequence[Path] = (),
        leader: bool | None = None,
        charm_class: str | None = None,
        principal: Unit | None = None,
    ) -> Unit:
        """Lay out the charm in ``charm_dir`` (its project folder) as ``charmcraft pack`` would, as a new unit.

        Nothing runs yet: drive the hooks with :meth:`Unit.deploy` (or :meth:`Unit.hook`).

        Args:
            charm_dir: the charm's project folder, with ``charmcraft.yaml`` and ``src/charm.py``.
            unit: the unit's name; default ``<charm name>/<next number>``.
            venv_extras: project folders (installed by pip), module files or packages (copied) that
                only this charm's ``venv/`` gets.
            leader: whether the unit is its application's leader; default: the application's first unit.
            charm_class: the charm's class in ``src/charm.py``; default: the one ``ops.main`` runs.
            principal: for a subordinate unit, its principal (``JUJU_PRINCIPAL_UNIT``, container scope).

        Returns:
            The unit.
        """
        project = yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())
        app = project["name"] if unit is None else unit.split("/")[0]
        if unit is None:
            unit = f"{app}/{sum(1 for u in self.units if u.split('/')[0] == app)}"
        if unit in self.units:
            raise ValueError(f"{unit} is already deployed on this machine")
        if bool(project.get("subordinate")) != (principal is not None):
            raise ValueError(f"{unit}: a subordinate needs a principal, a principal has none")
        if leader is None:
            leader = not any(u.split("/")[0] == app for u in self.units)
        agent = self.root / "var/lib/juju/agents" / f"unit-{unit.replace('/', '-')}"
        charm = agent / "charm"
        lay_out_charm(charm_dir, project, charm, self.root, charm_class)
        self.venvs.make(charm / "venv", venv_extras)
        bin_dir = agent / "bin"
        bin_dir.mkdir()
        for tool in hooktools.TOOLS:
            command = [str(self.python), "-I", "-c", _RUN_TOOL, str(self.state_path), unit, tool]
            script = bin_dir / tool
            script.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n', encoding="utf-8")
            script.chmod(0o755)
        options = project.get("config", {}).get("options", {})
        endpoints = {}
        for role in ("requires", "provides", "peers"):
            for name, spec in (project.get(role) or {}).items():
                endpoints[name] = {"role": role, "interface": spec["interface"], "scope": spec.get("scope", "global")}
        self.update(
            lambda s: s["units"].__setitem__(
                unit,
                {
                    "app": app,
                    "leader": leader,
                    "principal": principal.name if principal else "",
                    "options": sorted(options),
                    "config": {k: v["default"] for k, v in options.items() if "default" in v},
                    "endpoints": endpoints,
                    "action": None,
                    "logs": [],
                    "status": {},
                    "status_history": [],
                    "ports": [],
                    "workload_version": None,
                },
            )
        )
        made = Unit(self, unit, charm, bin_dir, project, principal)
        self.units[unit] = made
        return made

    def relate(self, one: Unit, other: Unit, endpoint: str, other_endpoint: str | None = None) -> Relation:
        """``juju integrate``: relate two units' applications (see :meth:`Unit.relate`)."""
        return one.relate(other, endpoint, other_endpoint)

    # --- what the tests look at --------------------------------------------------------------

    def path(self, absolute: str) -> Path:
        """``/etc/x`` on the machine: ``<root>/etc/x``."""
        return self.root / absolute.lstrip("/")

    def files(self, exclude: Iterable[str] = ("var/lib/juju/", "var/log/")) -> dict[str, tuple[int, int]]:
        """Every file under the root but the agents' and the journal's: (inode, mtime) by relative path."""
        skip = tuple(exclude)
        found = {}
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                path = os.path.join(dirpath, name)
                relative = os.path.relpath(path, self.root)
                if not relative.startswith(skip):
                    st = os.stat(path)
                    found[relative] = (st.st_ino, st.st_mtime_ns)
        return found

    def systemctl_calls(self) -> list[list[str]]:
        """Every ``systemctl`` call of any unit: ``[unit, "systemctl", *args]``."""
        return [call for call in self.state()["calls"] if call[1] == "systemctl"]

    def daemon_pids(self) -> list[int]:
        """Every process the systemctl stand-in started."""
        result: list[int] = self.state()["systemd"]["started"]
        return result

    def close(self) -> None:
        """Stop every process the systemctl stand-in started that still runs."""
        for pid in self.daemon_pids():
            hooktools.stop_process(pid, timeout=5)

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_RUN_TOOL = (
    f"import sys; sys.path.insert(0, {str(HOOKTOOLS.parent)!r}); import hooktools; sys.exit(hooktools.main(sys.argv))"
)


def lay_out_charm(project_dir: Path, project: dict[str, Any], charm: Path, root: Path, charm_class: str | None) -> None:
    """The charm as ``charmcraft pack`` lays it out (without ``venv/``), its entrypoint the kit's."""
    shutil.copytree(project_dir, charm, ignore=_pack_filter(project_dir))
    metadata = {key: project[key] for key in ("name", "summary", "description") if key in project}
    if "title" in project:
        metadata["display-name"] = project["title"]
    for key in ("requires", "provides", "peers", "assumes", "subordinate"):
        if key in project:
            metadata[key] = project[key]
    (charm / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    if "actions" in project:
        (charm / "actions.yaml").write_text(yaml.safe_dump(project["actions"], sort_keys=False))
    if "config" in project:
        (charm / "config.yaml").write_text(yaml.safe_dump(project["config"], sort_keys=False))
    (charm / "manifest.yaml").write_text(
        yaml.safe_dump({"bases": [{"name": "ubuntu", "channel": "24.04", "architectures": ["amd64"]}]})
    )
    (charm / "dispatch").write_text(DISPATCH)
    if charm_class is None:
        found = re.search(r"ops\.main\((\w+)", (charm / "src" / "charm.py").read_text())
        if found is None:
            raise ValueError(f"{project_dir}/src/charm.py: no ops.main(<CharmClass>); pass charm_class=")
        charm_class = found.group(1)
    (charm / ENTRYPOINT).write_text(ON_TEST_MACHINE.format(charm_class=charm_class, root=str(root)), encoding="utf-8")
    # The modes of a packed charm: the harvester refuses plugin dirs and files others may write.
    executable = {charm / "dispatch", charm / "src" / "charm.py", charm / ENTRYPOINT}
    for dirpath, _dirs, names in os.walk(charm):
        os.chmod(dirpath, 0o755)
        for name in names:
            path = Path(dirpath, name)
            path.chmod(0o755 if path in executable else 0o644)


class Unit:
    """One unit on a :class:`Machine`, driven through its charm's ``dispatch`` as the unit agent would.

    Attributes:
        machine: the machine it runs on.
        name: ``app/N``.
        app: the application's name.
        charm: the unit's charm dir (``<root>/var/lib/juju/agents/unit-app-N/charm``).
        bin: the hook tools' directory, first on the hooks' ``PATH``.
        runs: every hook run, in order.
    """

    ParamsRefused = ParamsRefusedError

    def __init__(
        self, machine: Machine, name: str, charm: Path, bin_dir: Path, project: dict[str, Any], principal: Unit | None
    ) -> None:
        self.machine = machine
        self.name = name
        self.app = name.split("/", maxsplit=1)[0]
        self.charm = charm
        self.bin = bin_dir
        self.project = project
        self.principal = principal
        self.runs: list[HookRun] = []

    def __repr__(self) -> str:
        return f"<Unit {self.name}>"

    # --- the unit's Juju state ---------------------------------------------------------------

    def juju(self) -> dict[str, Any]:
        """The unit's own Juju state: config, leader, status, logs, ports, action, ..."""
        result: dict[str, Any] = self.machine.state()["units"][self.name]
        return result

    def _update(self, change: Callable[[dict[str, Any]], None]) -> None:
        self.machine.update(lambda state: change(state["units"][self.name]))

    def status(self) -> tuple[str, str]:
        """The unit's status: (name, message)."""
        status = self.juju()["status"].get("unit", ["unknown", ""])
        return status[0], status[1]

    def logs(self) -> list[list[str]]:
        """``juju-log`` lines: ``[level, message]``."""
        result: list[list[str]] = self.juju()["logs"]
        return result

    def calls(self) -> list[list[str]]:
        """The tools this unit called: ``[tool, *args]``."""
        return [call[1:] for call in self.machine.state()["calls"] if call[0] == self.name]

    def tools_called(self) -> list[str]:
        """The names of the tools this unit called, sorted."""
        return sorted({call[0] for call in self.calls()})

    def opened_ports(self) -> list[str]:
        """What ``opened-ports`` would print: ``["18080/tcp"]``."""
        result: list[str] = self.juju()["ports"]
        return result

    # --- what an operator does with the juju client ------------------------------------------

    def config(self, **values: Any) -> None:
        """``juju config <app> key=value ...`` (keys with ``_`` for ``-``; None resets); Juju checks types."""
        options = self.project.get("config", {}).get("options", {})

        def change(unit: dict[str, Any]) -> None:
            for key, value in values.items():
                name = key.replace("_", "-")
                if name not in options:
                    raise ValueError(f'juju config would refuse {name}: the charm has no option "{name}"')
                spec = options[name]
                if value is None:
                    unit["config"].pop(name, None)
                    if "default" in spec:
                        unit["config"][name] = spec["default"]
                    continue
                kind = spec["type"]
                ok = {
                    "int": isinstance(value, int) and not isinstance(value, bool),
                    "float": isinstance(value, (int, float)) and not isinstance(value, bool),
                    "string": isinstance(value, str),
                    "boolean": isinstance(value, bool),
                    "secret": isinstance(value, str) and re.match(r"^secret:[0-9a-v]{20}$", value) is not None,
                }[kind]
                if not ok:
                    raise ValueError(f"juju config would refuse {name}={value!r} (type {kind})")
                unit["config"][name] = value

        self._update(change)

    def add_secret(self, content: dict[str, str], *, granted: bool = True) -> str:
        """``juju add-secret`` (and ``juju grant-secret <uri> <app>`` unless ``granted=False``): its URI."""
        uri = "secret:" + "".join(secrets.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(20))
        entry = {"content": dict(content), "owner": None, "grants": [self.app] if granted else []}
        self.machine.update(lambda state: state["secrets"].__setitem__(uri, entry))
        return uri

    def grant_secret(self, uri: str) -> None:
        """``juju grant-secret <uri> <app>``."""
        self.machine.update(lambda state: state["secrets"][uri]["grants"].append(self.app))

    # --- what the unit agent does ------------------------------------------------------------

    def environment(self, dispatch_path: str, **extra: str) -> dict[str, str]:
        """The environment the unit agent gives a hook."""
        agent = f"unit-{self.name.replace('/', '-')}"
        return {
            "PATH": f"{self.bin}:{self.machine.bin}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "JUJU_UNIT_NAME": self.name,
            "JUJU_MODEL_NAME": self.machine.state()["model"]["name"],
            "JUJU_MODEL_UUID": MODEL_UUID,
            "JUJU_MACHINE_ID": "0",
            "JUJU_CHARM_DIR": str(self.charm),
            "CHARM_DIR": str(self.charm),
            "JUJU_VERSION": "3.6.0",
            "JUJU_DISPATCH_PATH": dispatch_path,
            "JUJU_CONTEXT_ID": f"{self.name}-{dispatch_path.rsplit('/', 1)[-1]}-{secrets.randbelow(10**18)}",
            "JUJU_AGENT_SOCKET_ADDRESS": f"@/var/lib/juju/agents/{agent}/agent.socket",
            "JUJU_AGENT_SOCKET_NETWORK": "unix",
            "JUJU_API_ADDRESSES": "10.0.0.1:17070",
            "JUJU_AVAILABILITY_ZONE": "",
            "JUJU_PRINCIPAL_UNIT": self.principal.name if self.principal else "",
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

    def hook(
        self, name: str, *, relation: Relation | None = None, remote: Unit | None = None, departing: Unit | None = None
    ) -> HookRun:
        """Run one hook; a hook that errors puts a unit in error, so it fails the test.

        Args:
            name: the hook, ``install`` or ``<endpoint>-relation-joined``.
            relation: for a relation hook, the relation (``JUJU_RELATION``, ``JUJU_RELATION_ID``,
                ``JUJU_REMOTE_APP``).
            remote: for a relation hook of one remote unit, that unit (``JUJU_REMOTE_UNIT``).
            departing: for relation-departed, the unit that departs (``JUJU_DEPARTING_UNIT``).
        """
        extra = {"JUJU_HOOK_NAME": name}
        if relation is not None:
            extra["JUJU_RELATION"] = relation.endpoints[self.app]
            extra["JUJU_RELATION_ID"] = relation.ref(self.app)
            extra["JUJU_REMOTE_APP"] = next((a for a in relation.endpoints if a != self.app), self.app)
        if remote is not None:
            extra["JUJU_REMOTE_UNIT"] = remote.name
        if departing is not None:
            extra["JUJU_DEPARTING_UNIT"] = departing.name
        run = self._dispatch(f"hooks/{name}", **extra)
        if run.returncode != 0:  # what the hook printed, and its last juju-log lines (a traceback goes there)
            logged = "\n".join(f"{level}: {message}" for level, message in self.logs()[-5:])
            raise AssertionError(f"{self.name}: hook {name} failed:\n{run.stderr[-4000:]}\n{logged[-4000:]}")
        return run

    def deploy(self) -> None:
        """What Juju runs on a new unit: install, leader-elected (or -settings-changed), config-changed, start."""
        leader = self.juju()["leader"]
        for name in ("install", "leader-elected" if leader else "leader-settings-changed", "config-changed", "start"):
            self.hook(name)

    def action(self, name: str = "run-collectors", **params: Any) -> ActionRun:
        """``juju run <unit> <name> key=value ...``: Juju checks the params, then the unit runs it."""
        spec = self.project.get("actions", {}).get(name)
        if spec is None:
            raise ParamsRefusedError(f'action "{name}" not defined on unit "{self.name}"')
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
        self._update(
            lambda u: u.__setitem__("action", {"name": name, "params": full, "results": {}, "log": [], "failed": None})
        )
        hook = self._dispatch(f"actions/{name}", JUJU_ACTION_NAME=name, JUJU_ACTION_UUID=str(uuid.uuid4()))
        action = self.juju()["action"]
        self._update(lambda u: u.__setitem__("action", None))
        if hook.returncode != 0:
            return ActionRun(
                self.name, "failed", action["results"], f"exit status {hook.returncode}", action["log"], hook
            )
        status = "failed" if action["failed"] is not None else "completed"
        return ActionRun(self.name, status, action["results"], action["failed"], action["log"], hook)

    # --- relations ---------------------------------------------------------------------------

    def _endpoint(self, name: str) -> dict[str, Any]:
        for role in ("requires", "provides", "peers"):
            spec = (self.project.get(role) or {}).get(name)
            if spec is not None:
                return {"role": role, "interface": spec["interface"], "scope": spec.get("scope", "global")}
        if name == "juju-info":  # every charm provides it, undeclared
            return {"role": "provides", "interface": "juju-info", "scope": "global"}
        raise ValueError(f'{self.app} has no endpoint "{name}"')

    def relate(self, other: Unit, endpoint: str, other_endpoint: str | None = None) -> Relation:
        """``juju integrate``, then the hooks Juju runs on both units: created, joined, changed.

        ``endpoint`` is this unit's; ``other_endpoint`` the other's (default: the same name). A
        container-scoped endpoint (a subordinate's) relates the subordinate to its principal only.
        The units' bags get ``private-address``, ``ingress-address`` and ``egress-subnets``.
        """
        other_endpoint = other_endpoint or endpoint
        mine, theirs = self._endpoint(endpoint), other._endpoint(other_endpoint)
        if mine["interface"] != theirs["interface"]:
            raise ValueError(f"juju integrate would refuse: interfaces {mine['interface']} and {theirs['interface']}")
        if {mine["role"], theirs["role"]} != {"requires", "provides"}:
            raise ValueError(f"juju integrate would refuse: roles {mine['role']} and {theirs['role']}")
        container = "container" in (mine["scope"], theirs["scope"])
        if container and other.principal is not self and self.principal is not other:
            raise ValueError(
                f"a container-scoped relation joins a subordinate to its principal: {self.name}, {other.name}"
            )
        existing = [
            (number, r)
            for number, r in self.machine.state()["relations"].items()
            if r["ends"].get(self.app, {}).get("endpoint") == endpoint
            and r["ends"].get(other.app, {}).get("endpoint") == other_endpoint
        ]
        if existing:
            number = existing[0][0]
        else:
            self.machine._next_relation += 1
            number = str(self.machine._next_relation)
        relation = Relation(int(number), {self.app: endpoint, other.app: other_endpoint})
        address = {"private-address": "10.0.0.5", "ingress-address": "10.0.0.5", "egress-subnets": "10.0.0.5/32"}

        def add(state: dict[str, Any]) -> None:
            entry = state["relations"].setdefault(
                number,
                {
                    "interface": mine["interface"],
                    "scope": "container" if container else "global",
                    "ends": {
                        self.app: {"endpoint": endpoint, "data": {}},
                        other.app: {"endpoint": other_endpoint, "data": {}},
                    },
                    "units": {},
                },
            )
            for unit in (self, other):
                entry["units"].setdefault(unit.name, dict(address))

        self.machine.update(add)
        for unit in (self, other):
            unit.hook(f"{relation.endpoints[unit.app]}-relation-created", relation=relation)
        for unit, remote in ((self, other), (other, self)):
            unit.hook(f"{relation.endpoints[unit.app]}-relation-joined", relation=relation, remote=remote)
            unit.hook(f"{relation.endpoints[unit.app]}-relation-changed", relation=relation, remote=remote)
        return relation

    def relations(self) -> list[Relation]:
        """The relations this unit is in."""
        found = []
        for number, r in self.machine.state()["relations"].items():
            if self.name in r["units"]:
                found.append(Relation(int(number), {app: end["endpoint"] for app, end in r["ends"].items()}))
        return found

    def depart(self, relation: Relation) -> None:
        """This unit leaves ``relation``: relation-departed on both sides, then relation-broken here."""
        state = self.machine.state()
        entry = state["relations"][str(relation.id)]
        remotes = [self.machine.units[u] for u in hooktools.visible_units(state, self.name, entry)]

        def leave(state: dict[str, Any]) -> None:
            state["relations"][str(relation.id)]["units"].pop(self.name, None)

        self.machine.update(leave)
        for remote in remotes:
            remote.hook(
                f"{relation.endpoints[remote.app]}-relation-departed", relation=relation, remote=self, departing=self
            )
            self.hook(
                f"{relation.endpoints[self.app]}-relation-departed", relation=relation, remote=remote, departing=self
            )
        self.hook(f"{relation.endpoints[self.app]}-relation-broken", relation=relation)
        if not any(u.split("/")[0] != self.app for u in self.machine.state()["relations"][str(relation.id)]["units"]):
            for remote in remotes:
                remote.hook(f"{relation.endpoints[remote.app]}-relation-broken", relation=relation)

    def remove(self) -> None:
        """``juju remove-unit``: leave every relation, then stop and remove (subordinates go first)."""
        for unit in [u for u in self.machine.units.values() if u.principal is self]:
            unit.remove()
        for relation in self.relations():
            self.depart(relation)
        self.hook("stop")
        self.hook("remove")
        self.machine.update(lambda state: state["units"].pop(self.name))
        del self.machine.units[self.name]

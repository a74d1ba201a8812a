"""Test a charm that uses ``Harvester`` with ops[testing], without root, systemd or the runner.

The ``Harvester`` takes every path it writes and what reloads the service as constructor arguments
(see its docstring). A test routes a sandbox's into the charm through a class attribute that the
charm declares and a test subclass sets::

    # src/charm.py
    class MyCharm(ops.CharmBase):
        harvester_args: ClassVar[dict[str, Any]] = {}  # tests: Sandbox.harvester_args()

        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.harvester = Harvester(self, "collectors", **self.harvester_args)

    # tests/unit/test_harvester.py
    from ops import testing
    from dwellir_harvester.charm.testing import Sandbox, subclass

    def test_install(tmp_path):
        sandbox = Sandbox(tmp_path, services={"dwellir-harvester": "active"})
        ctx = testing.Context(subclass(MyCharm, harvester_args=sandbox.harvester_args()))
        ctx.run(ctx.on.install(), testing.State())
        assert sandbox.read_dropin("my-app")["collectors"] == ["peers"]
        assert ("service_reload", "dwellir-harvester") in sandbox.systemd.calls

- ``Sandbox(root)``: the harvester's directories under ``root`` (``<root>/etc/dwellir-harvester/
  config.d``, ``<root>/var/lib/dwellir-harvester/charms``, ``…/action-results``), a
  ``FakeSystemd``, and a group the test may give files to; ``harvester_args()`` hands them to
  ``Harvester``.
- ``subclass(MyCharm, **attributes)``: ``MyCharm`` with class attributes replaced, which ops[testing]
  loads the metadata of as it does for ``MyCharm`` itself.
- ``FakeSystemd``: a stand-in for ``charmlibs.systemd`` that keeps systemd's rules and records
  every call. It is passed in, never patched into ``charmlibs.systemd``: a charm that manages
  services of its own takes its service manager the same way (a class attribute its test sets).

This module is test-time code; the runtime package never imports it.
"""

from __future__ import annotations

import grp
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from charmlibs import systemd

from ._harvester import DEFAULT_CONFIG_DIR, DEFAULT_SNAPSHOT_DIR

__all__ = ["DropinWithdrawn", "FakeService", "FakeSystemd", "Sandbox", "subclass"]

_T = TypeVar("_T", bound=type)

STATES = ("active", "inactive", "failed")
#: ``Sandbox(group=...)``'s default: the test user's own group.
OWN_GROUP = "<the test user's group>"


class DropinWithdrawn(AssertionError):  # noqa: N818 - raised where a test asserts, like AssertionError
    """The charm withdrew its drop-in: its collectors could not be wired in, for ``reason``.

    ``Sandbox.read_dropin`` raises it, so a test that expects a drop-in fails with the charm's
    reason; a test that expects the block catches it (``pytest.raises(DropinWithdrawn)``).

    Attributes:
        app: the application whose drop-in it is.
        reason: the problem, as the drop-in's ``withdrawn`` states it (one line, redacted).
    """

    def __init__(self, app: str, reason: str) -> None:
        super().__init__(f"{app} withdrew its drop-in: {reason}")
        self.app = app
        self.reason = reason


@dataclass
class FakeService:
    """One installed unit: ``state`` is ``active``, ``inactive`` or ``failed``."""

    state: str = "inactive"
    enabled: bool = False
    masked: bool = False
    reloadable: bool = True


def _unit(name: str) -> str:
    return name if "." in name else f"{name}.service"


def _key(name: str) -> str:
    return name.removesuffix(".service")


class FakeSystemd:
    """A stand-in for the ``charmlibs.systemd`` module that keeps systemd's rules and records every call.

    It has the module's functions as methods, and fails where ``systemctl`` fails: a service that
    is not installed is not running and cannot be reloaded, started, stopped, enabled or disabled
    (``SystemdError``, with systemctl's message); an inactive or non-reloadable one cannot be
    reloaded; a masked one cannot be started. With ``systemctl=False`` every call raises
    ``FileNotFoundError``, as on a machine without systemctl. Pass it where the code under test
    takes its service manager (``Harvester(systemd=...)``); it never replaces
    ``charmlibs.systemd`` itself.

    Args:
        services: installed services, each mapped to its state (``active``, ``inactive``,
            ``failed``) or to a ``FakeService``; any other service is not installed.
        systemctl: False simulates a machine without ``systemctl``.

    Attributes:
        services: the installed services by name (without ``.service``).
        calls: every call as ``(function, *args)``, e.g. ``("service_reload", "dwellir-harvester")``.
    """

    def __init__(self, services: Mapping[str, str | FakeService] | None = None, *, systemctl: bool = True) -> None:
        """Install ``services``; the arguments are described on the class."""
        self.services: dict[str, FakeService] = {}
        self.systemctl = systemctl
        self.calls: list[tuple[Any, ...]] = []
        for name, spec in (services or {}).items():
            if isinstance(spec, FakeService):
                self.services[_key(name)] = spec
            else:
                self.install(name, spec)

    # --- arranging ---------------------------------------------------------------------------

    def install(self, name: str, state: str = "inactive", *, enabled: bool = False, reloadable: bool = True) -> None:
        """Make ``name`` an installed service in ``state``."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        self.services[_key(name)] = FakeService(state, enabled, reloadable=reloadable)

    def uninstall(self, name: str) -> None:
        """Make ``name`` a service that is not installed."""
        self.services.pop(_key(name), None)

    def state(self, name: str) -> str | None:
        """Return the service's state, or None when it is not installed."""
        service = self.services.get(_key(name))
        return service.state if service else None

    def called(self, function: str) -> list[tuple[Any, ...]]:
        """Return the recorded calls of one function (``"service_reload"``), each as its arguments."""
        return [call[1:] for call in self.calls if call[0] == function]

    # --- what systemctl would do -------------------------------------------------------------

    def _run(self, function: str, *args: Any) -> None:
        self.calls.append((function, *args))
        if not self.systemctl:
            raise FileNotFoundError(2, "No such file or directory", "systemctl")

    @staticmethod
    def _fail(command: list[str], code: int, stderr: str) -> systemd.SystemdError:
        return systemd.SystemdError(
            f"Command {['systemctl', *command]} failed with returncode {code}. systemctl output:\n"
            f"stdout: \nstderr: {stderr}\n"
        )

    def _installed(self, verb: str, name: str) -> FakeService:
        service = self.services.get(_key(name))
        if service is None:
            raise self._fail([verb, name], 5, f"Failed to {verb} {_unit(name)}: Unit {_unit(name)} not found.")
        return service

    def service_running(self, service_name: str) -> bool:
        """Return whether the service is active (``systemctl is-active``)."""
        self._run("service_running", service_name)
        service = self.services.get(_key(service_name))
        return service is not None and service.state == "active"

    def service_failed(self, service_name: str) -> bool:
        """Return whether the service has failed (``systemctl is-failed``)."""
        self._run("service_failed", service_name)
        service = self.services.get(_key(service_name))
        return service is not None and service.state == "failed"

    def service_start(self, *args: str) -> bool:
        """Start the services (``systemctl start``)."""
        self._run("service_start", *args)
        for name in args:
            service, unit = self._installed("start", name), _unit(name)
            if service.masked:
                raise self._fail(["start", name], 1, f"Failed to start {unit}: Unit {unit} is masked.")
            service.state = "active"
        return True

    def service_stop(self, *args: str) -> bool:
        """Stop the services (``systemctl stop``)."""
        self._run("service_stop", *args)
        for name in args:
            self._installed("stop", name).state = "inactive"
        return True

    def service_restart(self, *args: str) -> bool:
        """Restart the services (``systemctl restart``)."""
        self._run("service_restart", *args)
        for name in args:
            service, unit = self._installed("restart", name), _unit(name)
            if service.masked:
                raise self._fail(["restart", name], 1, f"Failed to restart {unit}: Unit {unit} is masked.")
            service.state = "active"
        return True

    def service_enable(self, *args: str) -> bool:
        """Enable the services (``systemctl enable``)."""
        self._run("service_enable", *args)
        for name in args:
            if _key(name) not in self.services:
                unit = _unit(name)
                raise self._fail(["enable", name], 1, f"Failed to enable unit: Unit file {unit} does not exist.")
            self.services[_key(name)].enabled = True
        return True

    def service_disable(self, *args: str) -> bool:
        """Disable the services (``systemctl disable``)."""
        self._run("service_disable", *args)
        for name in args:
            if _key(name) not in self.services:
                unit = _unit(name)
                raise self._fail(["disable", name], 1, f"Failed to disable unit: Unit file {unit} does not exist.")
            self.services[_key(name)].enabled = False
        return True

    def service_reload(self, service_name: str, restart_on_failure: bool = False) -> bool:
        """Reload the service, or restart it when that fails and ``restart_on_failure`` (``systemctl reload``)."""
        self._run("service_reload", service_name)
        service, unit = self._installed("reload", service_name), _unit(service_name)
        if service.state != "active" or not service.reloadable:
            if restart_on_failure:
                return self.service_restart(service_name)
            if not service.reloadable:
                reason = f"Failed to reload {unit}: Job type reload is not applicable for unit {unit}."
            else:
                reason = f"{unit} is not active, cannot reload."
            raise self._fail(["reload", service_name], 1, reason)
        return True

    def service_pause(self, service_name: str) -> bool:
        """Stop, disable and mask the service (``systemctl mask``)."""
        self._run("service_pause", service_name)
        service = self.services.get(_key(service_name))
        if service is not None:
            service.state, service.enabled, service.masked = "inactive", False, True
        return True

    def service_resume(self, service_name: str) -> bool:
        """Unmask, enable and start the service."""
        self._run("service_resume", service_name)
        service = self.services.get(_key(service_name))
        if service is None:
            raise systemd.SystemdError(f"Attempted to resume {service_name!r}, but it is not running.")
        service.masked, service.enabled, service.state = False, True, "active"
        return True

    def daemon_reload(self) -> bool:
        """Reload the unit files (``systemctl daemon-reload``)."""
        self._run("daemon_reload")
        return True


class Sandbox:
    """A machine for one test: the harvester's directories under ``root`` and a fake systemd.

    Args:
        root: a directory of the test's own (pytest's ``tmp_path``); created when missing.
        services: installed services and their states, e.g. ``{"dwellir-harvester": "active"}``;
            none by default (a machine where the harvester is not installed). Ignored when
            ``systemd`` is given.
        systemctl: False simulates a machine without ``systemctl``.
        systemd: a ``FakeSystemd`` (or a subclass) to use instead of a new one.
        group: the group ``Harvester`` gives a drop-in that holds a secret; default: the test
            user's own group (what the harvester's group is on a unit, and one a test may give
            files to). None: no group (such a drop-in is then 0600).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        services: Mapping[str, str | FakeService] | None = None,
        systemctl: bool = True,
        systemd: FakeSystemd | None = None,
        group: str | None = OWN_GROUP,
    ) -> None:
        """Make the sandbox; the arguments are described on the class."""
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.systemd = systemd if systemd is not None else FakeSystemd(services, systemctl=systemctl)
        self.group = _own_group() if group == OWN_GROUP else group

    def _under(self, path: str) -> Path:
        return self.root.joinpath(path.lstrip("/"))

    @property
    def config_dir(self) -> Path:
        """The drop-in directory: ``<root>/etc/dwellir-harvester/config.d``."""
        return self._under(DEFAULT_CONFIG_DIR)

    @property
    def snapshot_dir(self) -> Path:
        """The snapshot directory: ``<root>/var/lib/dwellir-harvester/charms``."""
        return self._under(DEFAULT_SNAPSHOT_DIR)

    @property
    def results_dir(self) -> Path:
        """Where documents too large for action results go: ``<root>/var/lib/dwellir-harvester/action-results``."""
        return self.snapshot_dir.parent / "action-results"

    def harvester_args(self) -> dict[str, Any]:
        """Keyword arguments for ``Harvester``: the sandbox's directories and its fake systemd.

        Returns:
            ``config_dir``, ``snapshot_dir``, ``results_dir``, ``systemd`` and ``group``; a charm
            passes them on with ``Harvester(self, ..., **harvester_args)``.
        """
        return {
            "config_dir": self.config_dir,
            "snapshot_dir": self.snapshot_dir,
            "results_dir": self.results_dir,
            "systemd": self.systemd,
            "group": self.group,
        }

    def dropin_path(self, app: str) -> Path:
        """The application's drop-in: ``<config_dir>/<app>.yaml``."""
        return self.config_dir / f"{app}.yaml"

    def snapshot_path(self, app: str) -> Path:
        """The application's snapshot: ``<snapshot_dir>/<app>.json``."""
        return self.snapshot_dir / f"{app}.json"

    def read_dropin(self, app: str) -> Any:
        """Return the application's drop-in as YAML data, or None when there is none.

        Raises:
            DropinWithdrawn: the charm withdrew its collectors (``Harvester.problem``); the
                exception says why.
        """
        path = self.dropin_path(app)
        if not path.exists():
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "withdrawn" in data:
            raise DropinWithdrawn(app, str(data["withdrawn"]))
        return data

    def read_snapshot(self, app: str) -> Any:
        """Return the application's snapshot as JSON data, or None when there is none."""
        path = self.snapshot_path(app)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _own_group() -> str | None:
    try:
        return grp.getgrgid(os.getegid()).gr_name
    except KeyError:  # a gid without a name (a container's): no group, so secret drop-ins are 0600
        return None


def subclass(charm_type: _T, **attributes: Any) -> _T:
    """Return a subclass of ``charm_type`` with some of its class attributes replaced.

    ops[testing] builds a charm as ``charm_type(framework)``, so a test cannot pass arguments to
    the charm's constructor; a class attribute that the charm reads there (``harvester_args``,
    say) can be replaced instead. The subclass is made to belong to ``charm_type``'s module, so
    ``testing.Context`` finds the charm's ``charmcraft.yaml`` exactly as it does for
    ``charm_type``.

    Args:
        charm_type: the charm class.
        **attributes: the class attributes to replace; each must exist on ``charm_type``, so that
            a misspelt name cannot leave the charm writing to the machine's real paths.

    Returns:
        The subclass, named like ``charm_type``.

    Raises:
        TypeError: ``charm_type`` has no class attribute of one of the given names.
    """
    missing = sorted(name for name in attributes if not hasattr(charm_type, name))
    if missing:
        raise TypeError(
            f"{charm_type.__qualname__} has no class attribute {', '.join(missing)}; declare it in the charm "
            f"(e.g. harvester_args: ClassVar[dict[str, Any]] = {{}}) and read it where the charm builds Harvester"
        )
    namespace = {"__module__": charm_type.__module__, "__qualname__": charm_type.__qualname__, **attributes}
    return cast(_T, type(charm_type.__name__, (charm_type,), namespace))

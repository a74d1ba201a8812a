"""Test a charm that uses ``Harvester`` with ops[testing], without root, systemd or the runner.

::

    from ops import testing
    from dwellir_harvester.charm.testing import harvester_sandbox

    def test_run_collectors(tmp_path):
        with harvester_sandbox(tmp_path, services={"dwellir-harvester": "active"}) as sandbox:
            with testing.Context(MyCharm) as ctx:
                ctx.run(ctx.on.config_changed(), testing.State())
        assert sandbox.read_dropin("my-app")["collectors"] == ["peers"]
        assert ("service_reload", "dwellir-harvester") in sandbox.systemd.calls

Inside ``harvester_sandbox(root)``, every ``Harvester`` a charm builds re-roots its absolute
paths under ``root`` (``/etc/dwellir-harvester/config.d`` becomes
``<root>/etc/dwellir-harvester/config.d``), whatever the charm passed, so the charm's code stays
as it is. ``charm_dir`` sets the directory a relative ``collector_dir`` is resolved from (your
charm's repository, when the Context uses a temporary charm root). Every function of
``charmlibs.systemd`` is replaced by a ``FakeSystemd`` that keeps systemd's rules: a service that
is not installed is not running and cannot be reloaded, started or stopped (``SystemdError``, as
systemctl fails), an inactive one cannot be reloaded; with ``systemctl=False`` every call raises
``FileNotFoundError`` as on a machine without systemctl. It records every call in ``calls``.

The fake stands for every ``charmlibs.systemd`` call in the process, your charm's own included:
list your workload's services in ``services`` too. This module is test-time code; the runtime
package never imports it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

import yaml
from charmlibs import systemd

from ._harvester import DEFAULT_CONFIG_DIR, DEFAULT_SNAPSHOT_DIR
from ._redirect import ACTIVE, Redirect

__all__ = ["FakeService", "FakeSystemd", "Sandbox", "harvester_sandbox"]

STATES = ("active", "inactive", "failed")


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
    """A stand-in for ``charmlibs.systemd`` that enforces systemd's rules and records every call.

    ``services`` maps a service name to its state (``active``, ``inactive``, ``failed``) or to a
    ``FakeService``; any other service is not installed. ``calls`` holds ``(function, *args)``
    tuples, e.g. ``("service_reload", "dwellir-harvester")``. Use it as a context manager (or
    through ``harvester_sandbox``) to patch ``charmlibs.systemd`` for the duration.
    """

    def __init__(self, services: Mapping[str, str | FakeService] | None = None, *, systemctl: bool = True) -> None:
        self.services: dict[str, FakeService] = {}
        self.systemctl = systemctl
        self.calls: list[tuple[Any, ...]] = []
        self._saved: dict[str, Any] = {}
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
        self.services.pop(_key(name), None)

    def state(self, name: str) -> str | None:
        """The service's state, or None when it is not installed."""
        service = self.services.get(_key(name))
        return service.state if service else None

    def called(self, function: str) -> list[tuple[Any, ...]]:
        """The recorded calls of one function (``"service_reload"``), each as its arguments."""
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
        self._run("service_running", service_name)
        service = self.services.get(_key(service_name))
        return service is not None and service.state == "active"

    def service_failed(self, service_name: str) -> bool:
        self._run("service_failed", service_name)
        service = self.services.get(_key(service_name))
        return service is not None and service.state == "failed"

    def service_start(self, *args: str) -> bool:
        self._run("service_start", *args)
        for name in args:
            service, unit = self._installed("start", name), _unit(name)
            if service.masked:
                raise self._fail(["start", name], 1, f"Failed to start {unit}: Unit {unit} is masked.")
            service.state = "active"
        return True

    def service_stop(self, *args: str) -> bool:
        self._run("service_stop", *args)
        for name in args:
            self._installed("stop", name).state = "inactive"
        return True

    def service_restart(self, *args: str) -> bool:
        self._run("service_restart", *args)
        for name in args:
            service, unit = self._installed("restart", name), _unit(name)
            if service.masked:
                raise self._fail(["restart", name], 1, f"Failed to restart {unit}: Unit {unit} is masked.")
            service.state = "active"
        return True

    def service_enable(self, *args: str) -> bool:
        self._run("service_enable", *args)
        for name in args:
            if _key(name) not in self.services:
                unit = _unit(name)
                raise self._fail(["enable", name], 1, f"Failed to enable unit: Unit file {unit} does not exist.")
            self.services[_key(name)].enabled = True
        return True

    def service_disable(self, *args: str) -> bool:
        self._run("service_disable", *args)
        for name in args:
            if _key(name) not in self.services:
                unit = _unit(name)
                raise self._fail(["disable", name], 1, f"Failed to disable unit: Unit file {unit} does not exist.")
            self.services[_key(name)].enabled = False
        return True

    def service_reload(self, service_name: str, restart_on_failure: bool = False) -> bool:
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
        self._run("service_pause", service_name)
        service = self.services.get(_key(service_name))
        if service is not None:
            service.state, service.enabled, service.masked = "inactive", False, True
        return True

    def service_resume(self, service_name: str) -> bool:
        self._run("service_resume", service_name)
        service = self.services.get(_key(service_name))
        if service is None:
            raise systemd.SystemdError(f"Attempted to resume {service_name!r}, but it is not running.")
        service.masked, service.enabled, service.state = False, True, "active"
        return True

    def daemon_reload(self) -> bool:
        self._run("daemon_reload")
        return True

    # --- patching ----------------------------------------------------------------------------

    def _functions(self) -> dict[str, Callable[..., bool]]:
        names = [name for name in systemd.__all__ if name != "SystemdError"]
        return {name: getattr(self, name) for name in names}

    def __enter__(self) -> Self:
        if self._saved:
            raise RuntimeError("this FakeSystemd is already patched in")
        for name, fake in self._functions().items():
            self._saved[name] = getattr(systemd, name)
            setattr(systemd, name, fake)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for name, original in self._saved.items():
            setattr(systemd, name, original)
        self._saved.clear()


class Sandbox:
    """Where a sandboxed charm's Harvester files are, and the fake systemd it talks to."""

    def __init__(self, root: Path, systemd: FakeSystemd) -> None:
        self.root = root
        self.systemd = systemd

    def path(self, path: str | os.PathLike[str]) -> Path:
        """Where a path the charm gives its Harvester really is: ``/etc/x`` → ``<root>/etc/x``."""
        return Redirect(self.root).path(path)

    @property
    def config_dir(self) -> Path:
        """The default drop-in directory, re-rooted."""
        return self.path(DEFAULT_CONFIG_DIR)

    @property
    def snapshot_dir(self) -> Path:
        """The default snapshot directory, re-rooted."""
        return self.path(DEFAULT_SNAPSHOT_DIR)

    @property
    def results_dir(self) -> Path:
        """Where documents too large for action results go (with the default snapshot dir)."""
        return self.snapshot_dir.parent / "action-results"

    def dropin_path(self, app: str) -> Path:
        return self.config_dir / f"{app}.yaml"

    def snapshot_path(self, app: str) -> Path:
        return self.snapshot_dir / f"{app}.json"

    def read_dropin(self, app: str) -> Any:
        """The application's drop-in as YAML data, or None when there is none."""
        path = self.dropin_path(app)
        return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None

    def read_snapshot(self, app: str) -> Any:
        """The application's snapshot as JSON data, or None when there is none."""
        path = self.snapshot_path(app)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


@contextmanager
def harvester_sandbox(
    root: str | os.PathLike[str],
    *,
    charm_dir: str | os.PathLike[str] | None = None,
    services: Mapping[str, str | FakeService] | None = None,
    systemctl: bool = True,
) -> Iterator[Sandbox]:
    """Redirect every ``Harvester``'s paths under ``root`` and fake systemd, for the ``with`` block.

    Args:
        root: a directory of the test's own (pytest's ``tmp_path``).
        charm_dir: resolve a relative ``collector_dir`` from here instead of the charm dir that
            ops[testing] makes up (point it at your charm's repository).
        services: installed services and their states, e.g. ``{"dwellir-harvester": "active"}``;
            none by default (a machine where the harvester is not installed).
        systemctl: False simulates a machine without systemctl.
    """
    base = Path(root).resolve()
    base.mkdir(parents=True, exist_ok=True)
    fake = FakeSystemd(services, systemctl=systemctl)
    token = ACTIVE.set(Redirect(base, Path(charm_dir).resolve() if charm_dir is not None else None))
    try:
        with fake:
            yield Sandbox(base, fake)
    finally:
        ACTIVE.reset(token)

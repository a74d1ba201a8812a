"""The ``Harvester`` ops Object: one line in a charm wires its collectors in and answers the action."""

from __future__ import annotations

import functools
import grp
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import ops
from charmlibs import systemd as charmlibs_systemd

from dwellir_harvester.lib import PluginPathError, check_plugin_dir, files, load_collectors
from dwellir_harvester.lib.isolation import WorkerPool, WorkerSource
from dwellir_harvester.lib.limits import one_line

from . import _action, _snapshot, _wiring

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_DIR = "/etc/dwellir-harvester/config.d"
DEFAULT_SNAPSHOT_DIR = "/var/lib/dwellir-harvester/charms"
DEFAULT_SERVICE = "dwellir-harvester"
DEFAULT_ACTION = "run-collectors"
DEFAULT_GROUP = "dwellir-harvester"
ACTION_PARAMS = ("collectors", "exclude", "validate", "timeout")


class ServiceManager(Protocol):
    """What ``Harvester`` asks of systemd: ``charmlibs.systemd`` has it, and so does ``testing.FakeSystemd``.

    Both methods take a service name (``dwellir-harvester``). A failure raises
    ``charmlibs.systemd.SystemdError``, or ``OSError`` (``FileNotFoundError`` when there is no
    ``systemctl``).
    """

    def service_running(self, service_name: str) -> bool:
        """Whether the service is active."""
        ...

    def service_reload(self, service_name: str, restart_on_failure: bool = False) -> bool:
        """Reload the service (``systemctl reload``)."""
        ...


class Harvester(ops.Object):
    """Ship a charm's collectors to the Dwellir Harvester, and answer ``run-collectors``.

    This docstring is the reference for the object; the guide (``docs/charm-authors.md``) walks
    through using it. ::

        class MyCharm(ops.CharmBase):
            def __init__(self, framework: ops.Framework):
                super().__init__(framework)
                self.harvester = Harvester(self, collector_dir="collectors")

    **Events.** It observes the charm's own events; the charm writes no handler:

    - ``install``, ``upgrade-charm``, ``config-changed``, and every event in ``refresh_events``:
      :meth:`configure`;
    - ``leader-elected``, and ``relation-created``, ``-joined``, ``-departed`` and ``-broken`` of
      every endpoint: refresh the snapshot;
    - ``remove``: remove the drop-in (then reload ``service`` when it runs), the snapshot (unless
      another unit of the application on the machine wrote it) and the unit's result files;
    - the action ``action``, when ``charmcraft.yaml`` declares it (else one warning per hook);
    - the end of every hook (the framework's ``pre-commit``): :meth:`configure`, when
      ``collectors``, ``exclude`` or a collector's options were changed after the constructor
      and since the last configure, and the unit has a drop-in (it was wired in before), so a
      handler that changes them needs no call of its own.

    **Changing what is wired in.** The charm computes its options from its config in ``__init__``
    and passes them to the constructor (each hook builds the charm anew), or changes them later,
    in ``__init__`` or a handler, with :meth:`set_collector_options`, which replaces one
    collector's options and leaves the others' alone; ``collector_options`` itself is read-only.
    Assigning ``collectors`` or ``exclude`` works the same way. Values changed after the
    constructor are re-wired at the end of every hook (discovery runs in the hook; the drop-in is
    written only when it changes): pass what is known in ``__init__`` to the constructor.

    **The drop-in** ``<config_dir>/<app>.yaml``, in the harvester's config format, adds the
    charm's collector dir to ``collector_paths``, its collectors to ``collectors`` and its
    ``collector_options``, and names the hook's interpreter (``python``) and the charm's own
    import directories (``python_path``: the entries of the hook's ``sys.path`` inside the charm
    dir, its ``venv/``, ``lib/`` and ``src/``), so the harvester runs the charm's collectors in a
    worker started that way, where the charm's dependencies import as they do in the action. It
    is written atomically and only when its content changes; after a change (or a change of its
    mode or group) ``service`` is reloaded when it is running; a
    service that is not installed or not running, or a machine without systemctl, is logged, not
    an error. It is mode 0644, like the rest of the harvester's config, unless a collector option
    holds a secret: a name with one of ``dwellir_harvester.lib.redact.SECRET_WORDS``
    (``rpc_password``), or a value with URL credentials (``https://user:pass@node``) or key
    material (a PEM block, a long hex key), at any depth. Then it is mode 0640 with the group
    ``group``, so the daemon can read it and other users cannot; when that group does not exist
    (or this process may not give files to it) it is 0600, root only, with a warning, and the
    next hook that writes it corrects mode and group once the group exists.

    **What is checked first.** The harvester does not run a drop-in that names a collector or an
    option it does not know, so a missing or unsafe collector dir, an option a discovered
    collector's constructor does not take, or a name that is a near miss of one of the charm's own
    collectors (``peres`` for ``peers``, while every plugin file in the dir imports) is a
    :attr:`problem`: the drop-in is withdrawn (it then holds only ``withdrawn: <the problem>``,
    which the harvester reports in ``harvester.problems``, so the machine says why the charm's
    collectors are missing), an error is logged and :attr:`status` is blocked.
    A name the hook does not discover otherwise is written with a warning: the harvester may have
    collectors the charm's environment does not (its built-ins, packages installed beside it). A
    plugin file that fails to import is a warning and is skipped.

    **The snapshot** ``<snapshot_dir>/<app>.json`` (format 1, mode 0644) is the charm's Juju
    context for the harvester's ``juju-charm`` collector: topology, the config with its secrets
    redacted (``dwellir_harvester.lib.redact.redact_values``, and every option of type
    ``secret``), and the relations without their data. It is rewritten only when something but
    its ``updated`` time changed; failing to write it is a warning, never a hook error. With
    ``juju-charm`` in ``exclude`` there is none (the unit's own is removed).

    **The action** runs the collectors in the hook (no daemon needed) and sets ``output`` (the
    document as JSON text) and ``status`` (``success``, ``partial`` or ``failed``). Params:
    ``collectors`` (names or namespaced names separated by spaces or commas; default ``host``
    when discoverable, which it is when the runner ``dwellir-harvester`` is installed in the
    charm, the charm's collectors, and ``juju-charm``, which is always the charm's live context,
    less ``exclude``), ``exclude`` (names to leave out of that selection), ``validate`` (default
    true), ``timeout`` (seconds per collector, greater than
    0 and at most ``dwellir_harvester.lib.limits.MAX_TIMEOUT``). A document too large for one
    ``action-set`` argument (128 KiB) goes to a 0600 file in ``results_dir`` (0700; the newest
    five per unit are kept), named by ``output-file`` instead of ``output``. A collector that
    fails or times out is logged and makes ``status`` partial or failed; bad params, unknown
    names or a missing collector dir fail the action. Every failure and log line is one line of
    at most ``dwellir_harvester.lib.limits.MAX_MESSAGE`` characters, with secrets redacted.

    **Tests.** Every path it writes, and what reloads the service, are constructor arguments, and
    nothing else moves them. ``dwellir_harvester.charm.testing.Sandbox.harvester_args()`` gives a
    test's set; the guide shows how a charm routes them in.

    Args:
        charm: the charm this object belongs to.
        collector_dir: the charm's plugin directory, relative to the charm dir or absolute.
        collectors: the collectors the charm contributes; None means every collector found in
            ``collector_dir``. Names the harvester provides (``juju-charm``) may be listed too.
        exclude: names to leave out: of the charm's collectors and of the action's default
            selection. Names the charm does not ship are also written to the drop-in's ``exclude``,
            which leaves them out of the machine's harvest (``host``: the machine has one document,
            so this is the operator's concern too); ``juju-charm`` means no snapshot of this charm.
        collector_options: constructor options per collector name, written to the drop-in and used
            by the action.
        refresh_events: more events on which to re-wire (:meth:`configure`), e.g. a relation's
            ``relation_changed`` when options come from relation data.
        config_dir: the harvester's drop-in directory.
        snapshot_dir: where the Juju context snapshot goes (read by the ``juju-charm`` collector).
        results_dir: where the action writes documents too large for action results; None:
            ``action-results`` beside ``snapshot_dir``.
        service: the harvester's systemd service, reloaded after the drop-in changes; None: never.
        action: the name of the action to answer; None: answer none.
        group: the group the harvester's daemon runs as, given a drop-in that holds a secret;
            None: no group (such a drop-in is 0600).
        systemd: what asks systemd whether ``service`` runs and reloads it (a
            :class:`ServiceManager`); None: the ``charmlibs.systemd`` module.
        isolation: ``process`` runs the action's collectors in a worker the hook can kill (started
            with the hook's interpreter and import path), so a collector that crashes gives a
            ``failed`` entry instead of a dead hook; ``thread`` runs them in the hook's process.

    Raises:
        TypeError: ``collectors`` or ``exclude`` is a string, not a list of names; a
            ``refresh_events`` item is not a bound event (``self.on.<event>``).
        ValueError: ``isolation`` is neither ``process`` nor ``thread``.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        collector_dir: str | os.PathLike[str] = "collectors",
        *,
        collectors: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        collector_options: Mapping[str, Mapping[str, Any]] | None = None,
        refresh_events: Iterable[ops.BoundEvent] = (),
        config_dir: str | os.PathLike[str] = DEFAULT_CONFIG_DIR,
        snapshot_dir: str | os.PathLike[str] = DEFAULT_SNAPSHOT_DIR,
        results_dir: str | os.PathLike[str] | None = None,
        service: str | None = DEFAULT_SERVICE,
        action: str | None = DEFAULT_ACTION,
        group: str | None = DEFAULT_GROUP,
        systemd: ServiceManager | None = None,
        isolation: str = "process",
    ) -> None:
        """Observe the charm's events; the arguments are described on the class."""
        super().__init__(charm, "dwellir-harvester")
        refresh = list(refresh_events)
        if any(not isinstance(event, ops.BoundEvent) for event in refresh):
            raise TypeError("refresh_events must be bound events, such as self.on.config_changed")
        self.charm = charm
        self._collectors = _name_list("collectors", collectors) if collectors is not None else None
        self._exclude = _name_list("exclude", exclude)
        self._options: dict[str, dict[str, Any]] = {
            name: dict(options) for name, options in (collector_options or {}).items()
        }
        self._changed = False  # collectors, exclude or options changed since the last configure()
        self.service = service
        self.action = action
        self.group = group
        if isolation not in ("process", "thread"):
            raise ValueError(f"isolation must be 'process' or 'thread', not {isolation!r}")
        self.isolation = isolation
        self._systemd: ServiceManager = systemd if systemd is not None else charmlibs_systemd
        self._collector_dir = Path(self.framework.charm_dir, collector_dir)
        self._config_dir = Path(config_dir)
        self._snapshot_dir = Path(snapshot_dir)
        self._results_dir = (
            Path(results_dir) if results_dir is not None else self._snapshot_dir.parent / "action-results"
        )
        self._wiring: _wiring.Wiring | None = None

        on = charm.on
        for event in (on.install, on.upgrade_charm, on.config_changed, *refresh):
            self.framework.observe(event, self._on_configure)
        self.framework.observe(self.framework.on.pre_commit, self._on_pre_commit)
        self.framework.observe(on.leader_elected, self._on_snapshot)
        for endpoint in self.framework.meta.relations:
            events = on[endpoint]
            for event in (events.relation_created, events.relation_joined, events.relation_departed):
                self.framework.observe(event, self._on_snapshot)
            self.framework.observe(events.relation_broken, self._on_snapshot)
        self.framework.observe(on.remove, self._on_remove)
        if action is not None:
            declared = self.framework.meta.actions.get(action)
            if declared is None:
                logger.warning(
                    "the charm does not declare the action %r in charmcraft.yaml, so `juju run` cannot "
                    "run its collectors; add the snippet from the dwellir-harvester-charm guide, or pass "
                    "action=None to Harvester()",
                    action,
                )
            else:
                missing = [p for p in ACTION_PARAMS if p not in declared.parameters]
                if missing:
                    logger.warning("the action %r does not declare the params %s", action, ", ".join(missing))
                self.framework.observe(on[action].action, self._on_action)

    # --- what the charm contributes ----------------------------------------------------------

    @property
    def collectors(self) -> list[str] | None:
        """The collectors the charm contributes (None: every one in its dir); assign to change them."""
        return list(self._collectors) if self._collectors is not None else None

    @collectors.setter
    def collectors(self, names: Sequence[str] | None) -> None:
        self._collectors = _name_list("collectors", names) if names is not None else None
        self._changed_wiring()

    @property
    def exclude(self) -> list[str]:
        """The names left out (see the class); assign to change them."""
        return list(self._exclude)

    @exclude.setter
    def exclude(self, names: Sequence[str]) -> None:
        self._exclude = _name_list("exclude", names)
        self._changed_wiring()

    @property
    def collector_options(self) -> Mapping[str, Mapping[str, Any]]:
        """Options per collector, read-only: change one collector's with :meth:`set_collector_options`."""
        return MappingProxyType({name: MappingProxyType(options) for name, options in self._options.items()})

    def set_collector_options(self, name: str, options: Mapping[str, Any] | None) -> None:
        """Replace the options of the collector ``name``; the other collectors' options stay as they are.

        The drop-in follows at the end of the hook (or at the next :meth:`configure`); a bad option
        is reported there, as a :attr:`problem`.

        Args:
            name: the collector's name.
            options: its constructor options; None: none (the collector's defaults).

        Raises:
            TypeError: ``name`` is not a non-empty string, or ``options`` is not a mapping.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"the collector's name must be a non-empty string, not {name!r}")
        if options is None:
            self._options.pop(name, None)
        elif isinstance(options, Mapping):
            self._options[name] = dict(options)
        else:
            raise TypeError(f"the options of {name!r} must be a mapping or None, not {type(options).__name__}")
        self._changed_wiring()

    def _changed_wiring(self) -> None:
        self._wiring = None
        self._changed = True

    # --- what the charm can read -------------------------------------------------------------

    @property
    def collector_dir(self) -> Path:
        """The charm's plugin directory, absolute."""
        return self._collector_dir

    @property
    def config_dir(self) -> Path:
        """The harvester's drop-in directory (``config_dir``)."""
        return self._config_dir

    @property
    def snapshot_dir(self) -> Path:
        """Where the Juju context snapshot goes (``snapshot_dir``)."""
        return self._snapshot_dir

    @property
    def results_dir(self) -> Path:
        """Where documents too large for action results are written (``results_dir``)."""
        return self._results_dir

    @property
    def dropin_path(self) -> Path:
        """This application's drop-in: ``<config_dir>/<app-name>.yaml``."""
        return self._config_dir / f"{self.model.app.name}.yaml"

    @property
    def snapshot_path(self) -> Path:
        """This application's Juju context snapshot: ``<snapshot_dir>/<app-name>.json``."""
        return self._snapshot_dir / f"{self.model.app.name}.json"

    @property
    def collector_names(self) -> list[str]:
        """The collectors the charm contributes: ``collectors``, or every collector found in its dir."""
        return list(self._discover().names)

    @property
    def problem(self) -> str | None:
        """Why the charm's collectors cannot be wired in (then there is no drop-in); None when they can."""
        return self._discover().error

    @property
    def status(self) -> ops.StatusBase:
        """A status for the charm's collect-status handler: blocked with the problem, or active.

        ``event.add_status(self.harvester.status)`` in ``collect_unit_status``.
        """
        wiring = self._discover()
        if wiring.error:
            return ops.BlockedStatus(_action.redacted(f"harvester: {wiring.error}"))
        return ops.ActiveStatus()

    # --- wiring ------------------------------------------------------------------------------

    def configure(self) -> bool:
        """Discover the charm's collectors again and bring the drop-in and the snapshot up to date.

        It runs on the events the class lists, and at the end of a hook that changed what is
        wired in; call it yourself only to re-wire on something that is not an event (the charm's
        collector dir changed on disk, say). Writes the drop-in only when its content changes,
        corrects its mode and group when they are not what its content calls for, and after
        either reloads the service when it is running. When the collectors cannot be wired
        (``problem``: a missing collector dir, a near miss of one of its collector names, a bad
        option) the drop-in is withdrawn: it then holds only why, so the harvester keeps running
        for the other charms on the machine and reports the reason.

        Returns:
            True when the drop-in was written or withdrawn (not when only its mode or group changed).
        """
        self._wiring = None
        self._changed = False
        wiring = self._discover()
        for warning in wiring.warnings:
            logger.warning("harvester: %s", _action.redacted(warning))
        app, charm = self.model.app.name, self.framework.meta.name
        if wiring.error:
            reason = _action.redacted(wiring.error)
            logger.error("harvester: cannot wire the charm's collectors in: %s", reason)
            changed = files.write_if_changed(self.dropin_path, _wiring.render_withdrawn(app, charm, reason), 0o644)
            if changed:
                logger.info("withdrew the collectors from %s", self.dropin_path)
        else:
            python, python_path = self._hook_python()
            content = _wiring.render_dropin(app, charm, wiring, self._options, python, python_path)
            mode, gid = self._dropin_mode()
            before = self._access(self.dropin_path)
            changed = files.write_if_changed(self.dropin_path, content, mode, gid)
            if changed:
                logger.info("wrote %s (collectors: %s)", self.dropin_path, ", ".join(wiring.names) or "none")
            elif self._access(self.dropin_path) != before:  # the daemon may read it now, or no longer
                logger.info("changed the mode or group of %s", self.dropin_path)
                self._reload()
        if changed:
            self._reload()
        self._write_snapshot()
        return changed

    def _write_snapshot(self, snapshot: Mapping[str, Any] | None = None) -> bool:
        """Write the Juju context snapshot when its content (all but ``updated``) changed; True if written.

        The snapshot is an aid to the harvester, not the charm's business: a failure to write it is
        a warning, never a hook error.
        """
        path = self.snapshot_path
        if _wiring.JUJU_CHARM in self._exclude:  # the charm reports no Juju context of its own
            try:
                self._remove_own_snapshot()
            except (OSError, ValueError) as err:
                logger.warning("cannot remove the snapshot %s: %s", path, one_line(err))
            return False
        if snapshot is None:
            snapshot = _snapshot.build(self.charm)
        try:
            previous = files.read_bytes(path)
            if previous is not None and _snapshot.same_content(previous, snapshot):
                files.write_if_changed(path, previous, 0o644)  # the same bytes: fixes the mode, nothing else
                return False
            files.write_if_changed(path, _snapshot.render(snapshot), 0o644)
        except (OSError, ValueError) as err:
            logger.warning("cannot write the snapshot %s: %s", path, one_line(err))
            return False
        logger.debug("wrote %s", path)
        return True

    @staticmethod
    def _access(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return st.st_mode & 0o7777, st.st_gid

    def _dropin_mode(self) -> tuple[int, int | None]:
        """Return the drop-in's mode and group: 0644, or 0640 with ``group`` (else 0600) when it holds a secret."""
        if not _wiring.holds_secret(self._options):
            return 0o644, None
        gid, reason = self._group_id()
        if gid is None:
            logger.warning(
                "harvester: %s holds a secret and %s, so it is mode 0600 and only root can read it",
                self.dropin_path,
                reason,
            )
            return 0o600, None
        return 0o640, gid

    def _group_id(self) -> tuple[int | None, str]:
        """Return the gid of ``group`` when this process may give files to it, else why not."""
        if self.group is None:
            return None, "no group was given (group=None)"
        try:
            gid = grp.getgrnam(self.group).gr_gid
        except KeyError:
            return None, f"the group {self.group!r} does not exist (is the harvester installed?)"
        if os.geteuid() != 0 and gid not in (os.getegid(), *os.getgroups()):
            return None, f"this process may not give files to the group {self.group!r}"
        return gid, ""

    def _discover(self) -> _wiring.Wiring:
        if self._wiring is None:
            self._wiring = _wiring.discover(self._collector_dir, self._collectors, self._options, self._exclude)
        return self._wiring

    def _reload(self) -> None:
        """Reload the harvester's service when it is installed and running; never an error."""
        if self.service is None:
            return
        try:
            if not self._systemd.service_running(self.service):
                logger.info("%s is not running; it reads the new config when it starts", self.service)
                return
            self._systemd.service_reload(self.service)
        except FileNotFoundError as err:
            logger.info("cannot reload %s: systemctl is not available (%s)", self.service, err)
        except (charmlibs_systemd.SystemdError, OSError) as err:
            logger.warning("cannot reload %s: %s", self.service, one_line(str(err)))
        else:
            logger.info("reloaded %s", self.service)

    # --- event handlers ----------------------------------------------------------------------

    def _on_configure(self, event: ops.EventBase) -> None:
        self.configure()

    def _on_pre_commit(self, event: ops.EventBase) -> None:
        # Only a unit that is wired in already (or withdrawn) is re-wired: an action run before
        # install, say, leaves no drop-in behind.
        if self._changed and self.dropin_path.exists():
            self.configure()

    def _on_snapshot(self, event: ops.EventBase) -> None:
        self._write_snapshot()

    def _on_remove(self, event: ops.RemoveEvent) -> None:
        self._changed = False  # nothing is wired in again once the unit goes
        removed = False
        try:
            removed = files.remove(self.dropin_path)
        except OSError as err:
            logger.warning("cannot remove %s: %s", self.dropin_path, one_line(err))
        if removed:
            logger.info("removed %s", self.dropin_path)
            self._reload()
        try:
            self._remove_own_snapshot()
            _action.prune_result_files(self.results_dir, self.model.unit.name, keep=0)
        except (OSError, ValueError) as err:
            logger.warning("cannot clean up after the unit: %s", one_line(err))

    def _remove_own_snapshot(self) -> None:
        """Remove the snapshot unless another unit of the application on this machine wrote it."""
        content = files.read_bytes(self.snapshot_path)
        if content is None:
            return
        try:
            unit = json.loads(content)["topology"]["unit"]
        except (ValueError, KeyError, TypeError):
            unit = self.model.unit.name
        if unit == self.model.unit.name:
            files.remove(self.snapshot_path)

    def _on_action(self, event: ops.ActionEvent) -> None:
        _action.report(event, self._run_action(event.params))

    def _hook_python(self) -> tuple[str, tuple[str, ...]]:
        """The hook's interpreter, and the directories of its import path inside the charm dir."""
        charm_dir = Path(os.path.abspath(self.framework.charm_dir))
        inside = []
        for entry in sys.path:  # as the hook sees them: a venv/ linked from elsewhere is still the charm's
            path = Path(os.path.abspath(entry or "."))
            if path.is_relative_to(charm_dir) and path.is_dir():
                inside.append(str(path))
        return sys.executable, tuple(dict.fromkeys(inside))

    def _run_action(self, params: Mapping[str, Any]) -> _action.ActionOutcome:
        """Gather what the action needs from the hook, run it, and fit its results for Juju."""
        try:
            snapshot = _snapshot.build(self.charm)
        except ops.ModelError as err:
            return _action.failed(f"cannot read the charm's Juju context: {err}")
        self._write_snapshot(snapshot)
        try:
            check_plugin_dir(self._collector_dir)
        except PluginPathError as err:
            return _action.failed(f"collector dir {self._collector_dir} {err.reason}")
        run = functools.partial(
            _action.run,
            params,
            app=self.model.app.name,
            snapshot=snapshot,
            directory=self._collector_dir,
            collectors=self._collectors,
            exclude=self._exclude,
            options=self._options,
        )
        if self.isolation == "thread":
            outcome = run(load_collectors([self._collector_dir], env=False))
        else:  # the collectors run in a worker: one that crashes or hangs cannot take the hook with it
            source = WorkerSource(
                self.model.app.name,
                (str(self._collector_dir),),
                python=sys.executable,
                python_path=tuple(entry for entry in sys.path if entry),
            )
            with WorkerPool() as pool:
                outcome = run(pool.discover([source]), run_harvest=pool.harvest)
        return _action.deliver(outcome, self._results_dir, self.model.unit.name)


def _name_list(what: str, names: Sequence[str]) -> list[str]:
    """Return ``names`` as a list of distinct names, or raise TypeError for a string or a non-string name."""
    if isinstance(names, str):
        raise TypeError(f"{what} must be a list of names, not a string")
    listed = list(dict.fromkeys(names))
    if any(not isinstance(name, str) or not name for name in listed):
        raise TypeError(f"{what} must hold non-empty strings")
    return listed

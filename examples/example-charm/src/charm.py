#!/usr/bin/env python3
"""harvester-example: run the Dwellir Harvester daemon on this machine, with this charm's collectors.

What the charm does on the machine, hook by hook:

- install, start, upgrade-charm, config-changed, secret-changed: make sure the service's system
  user exists; write the hardened unit ``/etc/systemd/system/dwellir-harvester.service`` (the
  runner from the charm's own venv, so nothing is downloaded), the main config
  ``/etc/dwellir-harvester/config.yaml`` and, when the ``auth-tokens`` secret is set, the token
  file ``/etc/dwellir-harvester/tokens.yaml`` (mode 0640, group of the service user) — each
  atomically and only when its content changes. Then one decision for the service: start it when
  it is not running; restart it when the unit, the bind address or the port changed (the daemon
  cannot rebind on a reload) or the charm was upgraded (the daemon runs from the charm's venv);
  reload it (SIGHUP) when only something it reads changed; otherwise leave it alone.
- The ``Harvester`` object (dwellir-harvester-charm) writes this charm's drop-in
  ``config.d/harvester-example.yaml`` (its collectors and their options), keeps a snapshot of the
  charm's Juju context for the ``juju-charm`` collector, and answers the ``run-collectors``
  action. It is given ``service=None``: the charm reloads the service itself, once, when the
  drop-in or its own files changed.
- A config that is wrong (a bad port, an unknown collector, a secret that cannot be read, …)
  blocks the unit and is not applied: every file keeps its last good content, the Harvester is
  given the collectors and options its drop-in already holds, and the service is left alone.
- remove: stop and disable the service, remove the unit, the main config and the token file
  (the Harvester removes its drop-in and snapshot).

What a test (or a machine laid out differently) changes are two class attributes, read where the
charm builds what uses them: ``paths`` (every path the charm and its ``Harvester`` write, under
one root: ``/`` on a unit) and ``systemd`` (what manages the service: the ``charmlibs.systemd``
module on a unit). The tests set them on a subclass (``dwellir_harvester.charm.testing.subclass``),
as docs/charm-authors.md shows for ``Harvester``'s arguments.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import ops
import workload
from charmlibs import systemd as charmlibs_systemd

from dwellir_harvester.charm import Harvester
from dwellir_harvester.lib import PluginPathError, files, load_collectors
from dwellir_harvester.lib.redact import REDACTED, is_sensitive, redact_url

logger = logging.getLogger(__name__)

COLLECTOR_DIR = "collectors"
UNIT_FACTS = "unit-facts"
POLKADOT = "polkadot"
OWN_COLLECTORS = (UNIT_FACTS, POLKADOT)
JOURNAL_HINT = f"see `journalctl -u {workload.SERVICE}`"


class Tokens(NamedTuple):
    """The tokens read from the secret (None: no secret configured), or why they cannot be used."""

    tokens: list[workload.Token] | None
    problem: str | None = None


class HarvesterExampleCharm(ops.CharmBase):
    """Runs the harvester daemon and ships the ``unit-facts`` and ``polkadot`` collectors."""

    #: Every path the charm writes, its Harvester's included: the machine's own on a unit.
    paths: ClassVar[workload.Paths] = workload.Paths()
    #: What starts, stops and reloads the service: the ``charmlibs.systemd`` module on a unit.
    systemd: ClassVar[workload.Systemd] = charmlibs_systemd

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._running: bool | None = None  # what systemd said in this hook, once asked
        self._service_problem: str | None = None
        self._removing = False
        on = self.on
        framework.observe(on.remove, self._on_remove)  # before the Harvester's: stop, then clean up
        self.harvester = Harvester(
            self,
            COLLECTOR_DIR,
            config_dir=self.paths.config_dir,
            snapshot_dir=self.paths.snapshot_dir,
            results_dir=self.paths.results_dir,
            service=None,  # the charm starts, restarts or reloads the service, once per hook
        )
        # The drop-in as it is before any handler runs (the Harvester's run before the charm's),
        # then what the Harvester should wire in this hook.
        self._dropin_before = self._read_dropin()
        self.harvester.collectors, self.harvester.collector_options = self._wiring()
        # After the Harvester's handlers: the drop-in is written before the daemon (re)starts.
        for event in (on.install, on.start, on.upgrade_charm, on.config_changed, on.secret_changed):
            framework.observe(event, self._on_reconcile)
        framework.observe(on.collect_unit_status, self._on_collect_status)

    def _read_dropin(self) -> bytes | None:
        """The Harvester's drop-in as it is now; None when there is none (or it cannot be read)."""
        try:
            return files.read_bytes(self.harvester.dropin_path)
        except (OSError, ValueError) as err:
            logger.warning("cannot read %s: %s", self.harvester.dropin_path, err)
            return None

    # --- what the config says ------------------------------------------------------------------

    @functools.cached_property
    def settings(self) -> workload.Settings:
        """The charm's config, checked against the collectors the runner and the charm provide."""
        try:
            registry = load_collectors([self.harvester.collector_dir], env=False)
        except PluginPathError:
            return workload.parse_config(self.config, (), OWN_COLLECTORS)  # the Harvester says why
        return workload.parse_config(self.config, registry, OWN_COLLECTORS)

    @functools.cached_property
    def tokens(self) -> Tokens:
        """The tokens in the ``auth-tokens`` secret; read once per hook, never logged."""
        secret_id = self.settings.token_secret
        if secret_id is None:
            return Tokens(None)
        where = f"the auth-tokens secret {secret_id}"
        try:
            content = self.model.get_secret(id=secret_id).get_content(refresh=True)
        except ops.SecretNotFoundError:
            return Tokens(None, f"{where} does not exist or is not granted to {self.app.name}")
        except ops.ModelError as err:
            reason = " ".join(str(err).split()) or "permission denied"
            return Tokens(None, f"cannot read {where} ({reason}); grant it to {self.app.name}")
        text = content.get(workload.TOKENS_KEY)
        if text is None:
            return Tokens(None, f"{where} has no key {workload.TOKENS_KEY!r}")
        try:
            return Tokens(workload.parse_tokens(text))
        except workload.TokenError as err:
            return Tokens(None, f"the {workload.TOKENS_KEY!r} of {where} {err}")

    @functools.cached_property
    def problems(self) -> list[str]:
        """Everything wrong with the config, each on one line; any of them blocks the unit."""
        settings = self.settings
        found = list(settings.problems)
        if settings.rpc_problem:
            found.append(settings.rpc_problem)
        if self.tokens.problem:
            found.append(self.tokens.problem)
        return found

    def _wiring(self) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The collectors and options for the Harvester: from the config, or kept while it is wrong."""
        if self.problems:
            kept = workload.read_wiring(self._dropin_before)
            if kept is not None:
                return kept
        url = self.settings.rpc_url
        collectors = [UNIT_FACTS, POLKADOT] if url else [UNIT_FACTS]
        options: dict[str, dict[str, Any]] = {UNIT_FACTS: self._unit_facts()}
        if url:
            options[POLKADOT] = {"rpc_url": url}
        return collectors, options

    def _unit_facts(self) -> dict[str, Any]:
        """What the charm tells ``unit-facts``; it ends up in the drop-in, so never a secret."""
        meta = self.framework.meta
        secret_typed = {name for name, option in meta.config.items() if option.type == "secret"}
        config: dict[str, Any] = {}
        for name, value in sorted(self.config.items()):
            if name in secret_typed or is_sensitive(name):
                config[name] = REDACTED
            else:
                config[name] = redact_url(value) if isinstance(value, str) else value
        return {
            "application": self.app.name,
            "unit": self.unit.name,
            "model": self.model.name,
            "model_uuid": self.model.uuid,
            "charm": meta.name,
            "config": config,
        }

    # --- hooks ---------------------------------------------------------------------------------

    def _on_reconcile(self, event: ops.EventBase) -> None:
        try:
            user = workload.ensure_user(workload.USER, self.paths.state_dir)
        except workload.UserError as err:
            self._service_problem = f"cannot create the service user: {err}"
            logger.error("%s", self._service_problem)
            return
        unit_changed = files.write_if_changed(
            self.paths.unit_file, workload.render_unit(self.charm_dir, self.paths).encode(), 0o644
        )
        if unit_changed:
            logger.info("wrote %s", self.paths.unit_file)
            if not (
                self._systemctl("daemon-reload", self.systemd.daemon_reload)
                and self._systemctl("enable", self.systemd.service_enable, workload.SERVICE)
            ):
                files.remove(self.paths.unit_file)  # so that the next hook tries again
                return
        if isinstance(event, (ops.InstallEvent, ops.UpgradeCharmEvent)):
            self.unit.set_workload_version(workload.runner_version())
        rebind = config_changed = tokens_changed = False
        if self.problems:
            logger.warning("not applying the config: %s", "; ".join(self.problems))
        else:
            rebind, config_changed, tokens_changed = self._write_config(user)
        dropin_changed = self._read_dropin() != self._dropin_before
        if not self.paths.main_config.exists():
            return  # nothing good to start the daemon with yet
        if not self.running:
            self._systemctl("start", self.systemd.service_start, workload.SERVICE)
        elif unit_changed or rebind or isinstance(event, ops.UpgradeCharmEvent):
            self._systemctl("restart", self.systemd.service_restart, workload.SERVICE)
        elif config_changed or tokens_changed or dropin_changed:
            self._systemctl("reload", self.systemd.service_reload, workload.SERVICE)

    def _write_config(self, user: workload.SystemUser) -> tuple[bool, bool, bool]:
        """Write the token file and the main config: (rebind, config changed, tokens changed)."""
        settings, tokens, paths = self.settings, self.tokens.tokens, self.paths
        previous = workload.read_yaml(paths.main_config)
        old = (previous.get("host"), previous.get("port")) if isinstance(previous, dict) else None
        tokens_changed = False
        if tokens is not None:  # the token file first, so that the config never names a missing one
            tokens_changed = files.write_if_changed(paths.token_file, workload.render_tokens(tokens), 0o640, user.gid)
            if tokens_changed:
                logger.info("wrote %s (%d tokens)", paths.token_file, len(tokens))
        content = workload.render_config(settings, paths, auth=tokens is not None)
        config_changed = files.write_if_changed(paths.main_config, content, 0o644)
        if config_changed:
            logger.info("wrote %s", paths.main_config)
        if tokens is None and files.remove(paths.token_file):
            tokens_changed = True
            logger.info("removed %s: the daemon requires no token now", paths.token_file)
        rebind = old is not None and old != (settings.host, settings.port)
        return rebind, config_changed, tokens_changed

    def _on_remove(self, event: ops.RemoveEvent) -> None:
        self._removing = True
        if self.paths.unit_file.exists():
            self._systemctl("stop", self.systemd.service_stop, workload.SERVICE)
            self._systemctl("disable", self.systemd.service_disable, workload.SERVICE)
        if files.remove(self.paths.unit_file):
            logger.info("removed %s", self.paths.unit_file)
            self._systemctl("daemon-reload", self.systemd.daemon_reload)
        for path in (self.paths.main_config, self.paths.token_file):
            if files.remove(path):
                logger.info("removed %s", path)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._removing:
            return  # the unit is going away: nothing to report
        # ops shows the status of the highest priority (blocked, maintenance, waiting, active) and,
        # of two of the same priority, the first added: so the active message goes first.
        settings = self.settings
        names = ", ".join(dict.fromkeys([*settings.collectors, *self.harvester.collector_names]))
        event.add_status(ops.ActiveStatus(f"harvesting {names} on {settings.host}:{settings.port}"))
        for problem in self.problems:
            event.add_status(ops.BlockedStatus(problem))
        event.add_status(self.harvester.status)
        if self._service_problem:
            event.add_status(ops.BlockedStatus(self._service_problem))
        elif not self.paths.unit_file.exists():
            event.add_status(ops.MaintenanceStatus(f"{workload.SERVICE} is not installed"))
        elif not self.running:
            event.add_status(ops.BlockedStatus(f"{workload.SERVICE} is not running: {JOURNAL_HINT}"))

    # --- systemd -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the service is active; systemd is asked at most once per hook."""
        if self._running is None:
            try:
                self._running = self.systemd.service_running(workload.SERVICE)
            except FileNotFoundError:
                self._running = False
        return self._running

    def _systemctl(self, verb: str, function: Callable[..., bool], *args: str) -> bool:
        """Run one systemctl verb; a failure blocks the unit (the log has systemctl's reason)."""
        command = " ".join(["systemctl", verb, *args])
        try:
            function(*args)
        except (charmlibs_systemd.SystemdError, OSError) as err:
            self._service_problem = f"{command} failed: {JOURNAL_HINT}"
            self._running = None
            logger.error("%s failed: %s", command, " ".join(str(err).split()))
            return False
        if verb in ("start", "restart", "stop"):
            self._running = verb != "stop"
        logger.info("%s", command)
        return True


if __name__ == "__main__":  # pragma: nocover
    ops.main(HarvesterExampleCharm)

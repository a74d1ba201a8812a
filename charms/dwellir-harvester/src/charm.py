#!/usr/bin/env python3
"""dwellir-harvester: the subordinate charm that runs the Dwellir Harvester daemon on its machine.

Deploy it once, relate it to each principal (``juju integrate dwellir-harvester my-node``): it
attaches through ``juju-info`` (container scope), so it runs next to whatever principal is on the
machine. The principals keep only their collectors and their ``Harvester`` object, which writes
their drop-in ``/etc/dwellir-harvester/config.d/<app>.yaml``; this charm runs the daemon that
reads them all.

What the charm does on the machine, hook by hook:

- install, start, upgrade-charm, config-changed, secret-changed, update-status and the
  ``juju-info`` relation's joined, changed, departed and broken: claim the machine (below); make
  sure the service's system user exists; write the hardened unit
  ``/etc/systemd/system/dwellir-harvester.service`` (the runner from this charm's ``venv/``, so
  nothing is downloaded), the main config ``/etc/dwellir-harvester/config.yaml`` and, when the
  ``auth-tokens`` secret is set, the token file ``/etc/dwellir-harvester/tokens.yaml`` and,
  when ``s3-endpoint-url`` is set, the ``s3`` sink's credentials file
  ``/etc/dwellir-harvester/s3-credentials.yaml`` from the ``s3-credentials`` secret (both 0640,
  group of the service user), each atomically and only when its content changes. Then one
  decision for the service: start it when it is not running; restart it when the unit, the bind
  address or the port changed (the daemon cannot rebind on a reload) or the charm was upgraded
  (the daemon runs from the charm's venv); reload it (SIGHUP) when only what it reads changed;
  otherwise leave it alone. The port is opened only when the bind address is not loopback.
- A config that is wrong (a bad port, an unknown collector, a secret that cannot be read, ...)
  blocks the unit and is not applied: every file keeps its last good content and the service is
  left alone.
- The principals' drop-ins are read, never written: the status names the charms that have one
  and the problems the daemon reports (``harvester.problems``).
- remove: stop and disable the service, remove the unit, the main config, the token file, the
  daemon's document and quarantine file and the owner file. The principals' drop-ins and
  snapshots stay: they are theirs.
- One unit runs the harvester per machine. Several principals on one machine related to this
  application make several units of it there: the first one claims the machine (the owner file
  ``/var/lib/dwellir-harvester/owner``, created with ``O_EXCL``); any other stands by (it writes
  nothing and touches no service) and takes over on a later hook once the owner file is gone.
- Actions: ``run-collectors`` runs the machine's whole harvest (every drop-in, the runner's
  built-ins) through this charm's runner; ``show-config`` prints the effective configuration,
  secrets redacted.

What a test (or a machine laid out differently) changes are two class attributes, read where the
charm uses them: ``paths`` (every path the charm reads or writes, under one root: ``/`` on a unit)
and ``systemd`` (what manages the service: the ``charmlibs.systemd`` module on a unit).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import ops
import workload
from charmlibs import systemd as charmlibs_systemd

from dwellir_harvester.charm import action
from dwellir_harvester.lib import files, overall_status
from dwellir_harvester.lib.limits import MAX_TIMEOUT, one_line

logger = logging.getLogger(__name__)

RELATION = "juju-info"
JOURNAL_HINT = f"see `journalctl -u {workload.SERVICE}`"
#: Seconds a runner subprocess may take beyond its collectors' timeout (start-up, discovery, workers).
RUNNER_GRACE = 120.0
#: How many names a status lists before it says how many more there are.
LISTED = 10


class Tokens(NamedTuple):
    """The tokens read from the secret (None: no secret configured), or why they cannot be used."""

    tokens: list[workload.Token] | None
    problem: str | None = None


class S3Secret(NamedTuple):
    """The S3 credentials read from the secret (None: no S3 sink configured), or why they cannot be used."""

    credentials: workload.S3Credentials | None
    problem: str | None = None


class RunnerResult(NamedTuple):
    """What a runner subprocess did: its exit status (None: it did not finish), stdout and stderr."""

    returncode: int | None
    stdout: str
    stderr: str


class DwellirHarvesterCharm(ops.CharmBase):
    """Runs the harvester daemon for every principal charm on the machine."""

    #: Every path the charm reads or writes: the machine's own on a unit.
    paths: ClassVar[workload.Paths] = workload.Paths()
    #: What starts, stops and reloads the service: the ``charmlibs.systemd`` module on a unit.
    systemd: ClassVar[workload.Systemd] = charmlibs_systemd

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._running: bool | None = None  # what systemd said in this hook, once asked
        self._service_problem: str | None = None
        self._removing = False
        self._owner: str | None = None  # the unit that runs the harvester here, once claimed
        on = self.on
        relation = on[RELATION]
        for event in (
            on.install,
            on.start,
            on.upgrade_charm,
            on.config_changed,
            on.secret_changed,
            on.update_status,
            relation.relation_joined,
            relation.relation_changed,
            relation.relation_departed,
            relation.relation_broken,
        ):
            framework.observe(event, self._on_reconcile)
        framework.observe(on.remove, self._on_remove)
        framework.observe(on.collect_unit_status, self._on_collect_status)
        framework.observe(on["run-collectors"].action, self._on_run_collectors)
        framework.observe(on["show-config"].action, self._on_show_config)

    # --- what the config says ------------------------------------------------------------------

    @functools.cached_property
    def settings(self) -> workload.Settings:
        """The charm's config, checked against the collectors the runner provides."""
        return workload.parse_config(self.config, workload.available_collectors())

    @functools.cached_property
    def tokens(self) -> Tokens:
        """The tokens in the ``auth-tokens`` secret; read once per hook, never logged."""
        secret_id = self.settings.token_secret
        if secret_id is None:
            return Tokens(None)
        where = f"the auth-tokens secret {one_line(secret_id, 100)}"
        try:
            content = self.model.get_secret(id=secret_id).get_content(refresh=True)
        except ops.SecretNotFoundError:
            return Tokens(None, f"{where} does not exist or is not granted to {self.app.name}")
        except ops.ModelError as err:
            reason = one_line(action.redacted(str(err)), 200) or "permission denied"
            return Tokens(None, f"cannot read {where} ({reason}); grant it to {self.app.name}")
        text = content.get(workload.TOKENS_KEY)
        if text is None:
            return Tokens(None, f"{where} has no key {workload.TOKENS_KEY!r}")
        try:
            return Tokens(workload.parse_tokens(text))
        except workload.TokenError as err:
            return Tokens(None, f"the {workload.TOKENS_KEY!r} of {where} {err}")

    @functools.cached_property
    def s3_credentials(self) -> S3Secret:
        """The credentials in the ``s3-credentials`` secret; read once per hook, never logged."""
        s3 = self.settings.s3
        if s3 is None:
            return S3Secret(None)
        where = f"the s3-credentials secret {one_line(s3.credentials_secret, 100)}"
        try:
            content = self.model.get_secret(id=s3.credentials_secret).get_content(refresh=True)
        except ops.SecretNotFoundError:
            return S3Secret(None, f"{where} does not exist or is not granted to {self.app.name}")
        except ops.ModelError as err:
            reason = one_line(action.redacted(str(err)), 200) or "permission denied"
            return S3Secret(None, f"cannot read {where} ({reason}); grant it to {self.app.name}")
        try:
            return S3Secret(workload.parse_s3_credentials(content))
        except workload.S3CredentialsError as err:
            return S3Secret(None, f"{where} {err}")

    @functools.cached_property
    def problems(self) -> list[str]:
        """Everything wrong with the config, each on one line; any of them blocks the unit."""
        found = list(self.settings.problems)
        if self.tokens.problem:
            found.append(self.tokens.problem)
        if self.s3_credentials.problem:
            found.append(self.s3_credentials.problem)
        return found

    def _machine(self) -> workload.MachineView:
        return workload.read_machine(self.paths, document=self.running)

    # --- hooks ---------------------------------------------------------------------------------

    def _claim(self) -> bool:
        """Claim the machine for this unit; False (standing by, or an error) when it runs nothing."""
        try:
            self._owner = workload.claim_machine(self.paths, self.unit.name)
        except OSError as err:
            self._service_problem = f"cannot claim the machine: {one_line(err)}"
            logger.error("%s", self._service_problem)
            return False
        if self._owner != self.unit.name:
            logger.info("standing by: %s runs the harvester on this machine", self._owner)
            return False
        return True

    def _on_reconcile(self, event: ops.EventBase) -> None:
        if isinstance(event, (ops.InstallEvent, ops.UpgradeCharmEvent)):
            self.unit.set_workload_version(workload.runner_version())
        if not self._claim():
            return
        try:
            user = workload.ensure_user(workload.USER, self.paths.state_dir)
        except workload.UserError as err:
            self._service_problem = f"cannot create the service user: {err}"
            logger.error("%s", self._service_problem)
            return
        unit_changed = files_write(self.paths.unit_file, workload.render_unit(self.charm_dir, self.paths).encode())
        if unit_changed:
            logger.info("wrote %s", self.paths.unit_file)
            if not (
                self._systemctl("daemon-reload", self.systemd.daemon_reload)
                and self._systemctl("enable", self.systemd.service_enable, workload.SERVICE)
            ):
                files.remove(self.paths.unit_file)  # so that the next hook tries again
                return
        rebind = config_changed = secrets_changed = False
        if self.problems:
            logger.warning("not applying the config: %s", "; ".join(self.problems))
        else:
            rebind, config_changed, secrets_changed = self._write_config(user)
            self._set_ports()
        if not self.paths.main_config.exists():
            return  # nothing good to start the daemon with yet
        if not self.running:
            self._systemctl("start", self.systemd.service_start, workload.SERVICE)
        elif unit_changed or rebind or isinstance(event, ops.UpgradeCharmEvent):
            self._systemctl("restart", self.systemd.service_restart, workload.SERVICE)
        elif config_changed or secrets_changed:
            self._systemctl("reload", self.systemd.service_reload, workload.SERVICE)

    def _write_config(self, user: workload.SystemUser) -> tuple[bool, bool, bool]:
        """Write the token and credentials files and the main config.

        Returns:
            (rebind, config changed, secret files changed).
        """
        settings, tokens, paths = self.settings, self.tokens.tokens, self.paths
        previous = workload.read_yaml(paths.main_config)
        old = (previous.get("host"), previous.get("port")) if isinstance(previous, dict) else None
        secrets_changed = False
        if tokens is not None:  # the token file first, so that the config never names a missing one
            secrets_changed = files.write_if_changed(paths.token_file, workload.render_tokens(tokens), 0o640, user.gid)
            if secrets_changed:
                logger.info("wrote %s (%d tokens)", paths.token_file, len(tokens))
        credentials = self.s3_credentials.credentials
        if credentials is not None:  # before the config too, for the same reason
            content = workload.render_s3_credentials(credentials)
            if files.write_if_changed(paths.s3_credentials_file, content, 0o640, user.gid):
                secrets_changed = True
                logger.info("wrote %s", paths.s3_credentials_file)
        known = workload.available_collectors() | self._machine_without_document().dropin_collectors
        exclude = [name for name in settings.exclude if name in known]
        absent = [name for name in settings.exclude if name not in known]
        if absent:
            logger.info("exclude-collectors: nothing on this machine provides %s now; left out", ", ".join(absent))
        content = workload.render_config(settings, paths, exclude, auth=tokens is not None)
        config_changed = files_write(paths.main_config, content)
        if config_changed:
            logger.info("wrote %s", paths.main_config)
        if tokens is None and files.remove(paths.token_file):
            secrets_changed = True
            logger.info("removed %s: the daemon requires no token now", paths.token_file)
        if credentials is None and files.remove(paths.s3_credentials_file):
            secrets_changed = True
            logger.info("removed %s: the daemon sends to no S3 endpoint now", paths.s3_credentials_file)
        rebind = old is not None and old != (settings.host, settings.port)
        return rebind, config_changed, secrets_changed

    def _machine_without_document(self) -> workload.MachineView:
        return workload.read_machine(self.paths, document=False)

    def _set_ports(self) -> None:
        """Open the daemon's port when it listens beyond loopback; close it otherwise."""
        settings = self.settings
        self.unit.set_ports() if settings.loopback else self.unit.set_ports(settings.port)

    def _on_remove(self, event: ops.RemoveEvent) -> None:
        self._removing = True
        try:
            action.prune_result_files(self.paths.results_dir, self.unit.name, keep=0)
        except OSError as err:
            logger.warning("cannot remove the unit's action results: %s", one_line(err))
        if workload.read_owner(self.paths) != self.unit.name:
            return  # standing by (or never installed): nothing here is this unit's
        if self.paths.unit_file.exists():
            self._systemctl("stop", self.systemd.service_stop, workload.SERVICE)
            self._systemctl("disable", self.systemd.service_disable, workload.SERVICE)
        if files.remove(self.paths.unit_file):
            logger.info("removed %s", self.paths.unit_file)
            self._systemctl("daemon-reload", self.systemd.daemon_reload)
        paths = self.paths
        for path in (
            paths.main_config,
            paths.token_file,
            paths.s3_credentials_file,
            paths.output,
            paths.quarantine,
            paths.owner_file,
        ):
            if files.remove(path):
                logger.info("removed %s", path)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._removing:
            return  # the unit is going away: nothing to report
        owner = self._owner or workload.read_owner(self.paths)
        if owner is not None and owner != self.unit.name:
            event.add_status(ops.ActiveStatus(f"standing by: {owner} runs the harvester on this machine"))
            return
        # ops shows the status of the highest priority (blocked, maintenance, waiting, active) and,
        # of two of the same priority, the first added: so the active message goes first.
        settings, machine = self.settings, self._machine()
        count = len(machine.collectors) if machine.collectors is not None else len(settings.collectors)
        host = machine.host if machine.host is not None else settings.host
        port = machine.port if machine.port is not None else settings.port
        charms = f" (from charms {action.redacted(listing(machine.charms))})" if machine.charms else ""
        event.add_status(ops.ActiveStatus(f"serving {count} collectors{charms} on {host}:{port}"))
        for problem in self.problems:
            event.add_status(ops.BlockedStatus(problem))
        if self._service_problem:
            event.add_status(ops.BlockedStatus(self._service_problem))
        elif not self.paths.unit_file.exists():
            event.add_status(ops.MaintenanceStatus(f"{workload.SERVICE} is not installed"))
        elif not self.running:
            event.add_status(ops.BlockedStatus(f"{workload.SERVICE} is not running: {JOURNAL_HINT}"))
        if machine.problems:
            first, more = machine.problems[0], len(machine.problems) - 1
            tail = f" (and {more} more: run the show-config action)" if more else ""
            event.add_status(ops.BlockedStatus(action.redacted(f"{first}{tail}")))

    # --- actions -------------------------------------------------------------------------------

    def _on_run_collectors(self, event: ops.ActionEvent) -> None:
        action.report(event, action.deliver(self.run_collectors(event.params), self.paths.results_dir, self.unit.name))

    def run_collectors(self, params: Mapping[str, Any]) -> action.ActionOutcome:
        """Run the machine's harvest with the action's params, as the daemon would, in a subprocess.

        The runner runs from this charm's venv with the main config (and so every drop-in): the
        principals' collectors run in workers under their own charm's Python, as in the daemon.
        """
        try:
            request = action.parse_params(params)
        except action.ActionInputError as err:
            return action.failed(str(err))
        if not self.paths.main_config.exists():
            return action.failed(f"the harvester is not configured on this machine yet ({self.paths.main_config})")
        flags = ["--config", str(self.paths.main_config)]
        if not request.validate:
            flags.append("--no-validate")
        if request.timeout is not None:
            flags += ["--timeout", repr(request.timeout)]
        for name in request.exclude:
            flags += ["--exclude", name]
        names = ["--", *request.names] if request.names else []
        deadline = (request.timeout if request.timeout is not None else MAX_TIMEOUT) + RUNNER_GRACE
        result = self._runner(["collect", *flags, *names], deadline)
        logs: list[str] = []
        if result.returncode not in (0, 1):
            return action.failed(self._runner_failure(result, deadline), logs)
        try:
            document = json.loads(result.stdout)
            status = overall_status(document)
        except (ValueError, KeyError, TypeError) as err:
            return action.failed(f"the runner printed no document ({one_line(err)}): {last_line(result.stderr)}")
        for problem in document["harvester"].get("problems", []):
            logs.append(action.redacted(f"left out: {problem.get('where')}: {problem.get('problem')}"))
        for key, entry in document["collectors"].items():
            meta = entry["meta"]
            if meta["status"] != "success":
                logs.append(action.redacted(f"{key}: {meta['status']}: {'; '.join(meta['errors'])}"))
        logs.append(f"done in {document['harvester']['duration_ms']:g} ms: {status}")
        invalid = None
        if result.returncode == 1 and status == "success":  # every collector succeeded: the document is invalid
            invalid = action.redacted(last_line(result.stderr) or "the document does not match the schema")
        return action.ActionOutcome({"output": result.stdout.strip(), "status": status}, tuple(logs), invalid)

    def _on_show_config(self, event: ops.ActionEvent) -> None:
        action.report(event, self.show_config())

    def show_config(self) -> action.ActionOutcome:
        """The effective configuration (``serve --check-config``), secrets redacted, as result ``config``."""
        if not self.paths.main_config.exists():
            return action.failed(f"the harvester is not configured on this machine yet ({self.paths.main_config})")
        deadline = MAX_TIMEOUT + RUNNER_GRACE
        result = self._runner(["serve", "--check-config", "--config", str(self.paths.main_config)], deadline)
        if result.returncode not in (0, 1):
            return action.failed(self._runner_failure(result, deadline))
        try:
            effective = json.loads(result.stdout)
        except ValueError as err:
            return action.failed(f"the runner printed no configuration ({one_line(err)}): {last_line(result.stderr)}")
        logs = [
            action.redacted(f"left out: {p.get('where')}: {p.get('problem')}")
            for p in effective.get("problems", [])
            if isinstance(p, dict)
        ]
        text = result.stdout.strip()
        if action.fits_in_result("config", text):
            return action.ActionOutcome({"config": text}, tuple(logs), None)
        try:
            path = action.write_result_file(self.paths.results_dir, self.unit.name, text)
        except OSError as err:
            return action.failed(f"the configuration is too large for action results and writing it failed: {err}")
        return action.ActionOutcome({"config-file": str(path)}, tuple(logs), None)

    def _runner(self, args: list[str], deadline: float) -> RunnerResult:
        """Run ``python -m dwellir_harvester.cli ARGS`` from this charm's venv, within ``deadline`` seconds."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PYTHONPATH": str(self.charm_dir / "venv"),
            "LANG": "C.UTF-8",
        }
        argv = [sys.executable, "-m", "dwellir_harvester.cli", *args]
        with subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,  # so that its workers end with it on a deadline
        ) as proc:
            try:
                out, err = proc.communicate(timeout=deadline)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                return RunnerResult(None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        return RunnerResult(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    @staticmethod
    def _runner_failure(result: RunnerResult, deadline: float) -> str:
        if result.returncode is None:
            return f"the runner did not finish within {deadline:g} s"
        line = last_line(result.stderr)
        if result.returncode == 2 and line:
            return line.removeprefix("dwellir-harvester: error: ")
        return f"the runner exited with status {result.returncode}: {line or 'no message'}"

    # --- systemd -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the service is active; systemd is asked at most once per hook."""
        if self._running is None:
            try:
                self._running = self.systemd.service_running(workload.SERVICE)
            except (charmlibs_systemd.SystemdError, OSError):
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
            logger.error("%s failed: %s", command, one_line(str(err)))
            return False
        if verb in ("start", "restart", "stop"):
            self._running = verb != "stop"
        logger.info("%s", command)
        return True


def files_write(path: Path, content: bytes) -> bool:
    """Write ``path`` (0644) atomically when its content changes; True when it was written."""
    return files.write_if_changed(path, content, 0o644)


def listing(names: tuple[str, ...]) -> str:
    """Return ``a, b, c``: at most ``LISTED`` names, then how many more there are."""
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" and {more} more" if more > 0 else "")


def last_line(text: str) -> str:
    """Return the last non-empty line of ``text`` (a runner's stderr), redacted and bounded."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return action.redacted(lines[-1]) if lines else ""


if __name__ == "__main__":  # pragma: nocover
    ops.main(DwellirHarvesterCharm)

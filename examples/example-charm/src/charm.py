#!/usr/bin/env python3
"""harvester-example: a principal node charm that ships two collectors to the Dwellir Harvester.

The charm runs no daemon. The subordinate charm ``dwellir-harvester``, related to this one over
``juju-info``, runs the harvester on the machine and harvests what every principal there wires in.
All this charm does for the harvester is one ``Harvester`` object (dwellir-harvester-charm), which

- writes the drop-in ``/etc/dwellir-harvester/config.d/harvester-example.yaml`` (the charm's
  ``collectors/`` dir, its collectors and their options) on install, upgrade-charm and
  config-changed, and reloads the subordinate's service when the drop-in changed and it runs;
- leaves a snapshot of the charm's Juju context for the harvester's ``juju-charm`` collector;
- answers the ``run-collectors`` action (declared in ``charmcraft.yaml``) in the hook itself;
- removes its drop-in and snapshot with the unit.

What the charm decides is which collectors it contributes, with which options: ``unit-facts``
always, ``polkadot`` when ``rpc-url`` is set. A config it cannot use blocks the unit with a
one-line reason and is not applied: the drop-in keeps its last good content.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import ops
import yaml

from dwellir_harvester.charm import Harvester
from dwellir_harvester.lib import files
from dwellir_harvester.lib.jsonrpc import check_http_url
from dwellir_harvester.lib.redact import REDACTED, is_sensitive, redact_url

logger = logging.getLogger(__name__)

UNIT_FACTS = "unit-facts"
POLKADOT = "polkadot"
OWN_COLLECTORS = (UNIT_FACTS, POLKADOT)  # the NAMEs of the collectors in collectors/


class HarvesterExampleCharm(ops.CharmBase):
    """Ships the ``unit-facts`` and ``polkadot`` collectors to the harvester on its machine."""

    #: Keyword arguments for Harvester() that differ from its defaults: none on a unit. Tests set
    #: a sandbox's paths here (docs/charm-authors.md, "Test the charm with ops[testing]").
    harvester_args: ClassVar[dict[str, Any]] = {}

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        # A charm is built anew for every hook, so what to wire in is worked out here, from the
        # config, and given to the constructor: the Harvester's handlers (and the action) use it.
        self.problem = rpc_url_problem(str(self.config.get("rpc-url", "")).strip())
        collectors, options = self._wiring()
        # The one line: drop-in, snapshot, run-collectors action and clean-up on remove.
        self.harvester = Harvester(
            self, "collectors", collectors=collectors, collector_options=options, **self.harvester_args
        )
        if self.problem:
            # While the config is wrong, the last good wiring stays: assigned after the
            # constructor, it is wired in again at the end of the hook (a write only on change).
            kept = wiring_in(self.harvester.dropin_path)
            if kept is not None:
                self.harvester.collectors = kept[0]
                for name in OWN_COLLECTORS:
                    self.harvester.set_collector_options(name, kept[1].get(name))
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _wiring(self) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The collectors and options the config asks for (``unit-facts`` alone while it is wrong)."""
        url = "" if self.problem else str(self.config.get("rpc-url", "")).strip()
        collectors, options = [UNIT_FACTS], {UNIT_FACTS: self._unit_facts()}
        if url:
            collectors.append(POLKADOT)
            options[POLKADOT] = {"rpc_url": url}
        return collectors, options

    def _unit_facts(self) -> dict[str, Any]:
        """What ``unit-facts`` reports. The drop-in is readable by every user: never put a secret here."""
        secret_typed = {name for name, option in self.framework.meta.config.items() if option.type == "secret"}
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
            "charm": self.framework.meta.name,
            "config": config,
        }

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        # ops shows the status of the highest priority (blocked beats active) and, of two of the
        # same priority, the one added first: so the active message goes first.
        names = ", ".join(self.harvester.collector_names)
        event.add_status(ops.ActiveStatus(f"ships {names} to the harvester"))
        if self.problem:
            event.add_status(ops.BlockedStatus(self.problem))
        event.add_status(self.harvester.status)  # blocked when the collectors cannot be wired in


def rpc_url_problem(url: str) -> str | None:
    """What is wrong with ``rpc-url`` (None when nothing is, or it is empty); never shows a credential."""
    if not url:
        return None
    if redact_url(url) != url:
        return "rpc-url must not hold credentials (charm config is readable by everyone who can read the model)"
    try:
        check_http_url(url, "rpc-url")
    except (TypeError, ValueError) as err:
        return str(err)
    return None


def wiring_in(dropin: Path) -> tuple[list[str], dict[str, dict[str, Any]]] | None:
    """The collectors and options the drop-in ``dropin`` holds; None when there is none, or it is unusable."""
    try:
        data = yaml.safe_load(files.read_bytes(dropin) or b"")
    except (OSError, ValueError, yaml.YAMLError) as err:
        logger.warning("cannot read %s: %s", dropin, err)
        return None
    if not isinstance(data, dict):
        return None
    collectors, options = data.get("collectors"), data.get("collector_options", {})
    if not isinstance(collectors, list) or not all(isinstance(name, str) for name in collectors):
        return None
    if not isinstance(options, dict) or not all(isinstance(o, dict) for o in options.values()):
        return None
    return collectors, options


if __name__ == "__main__":  # pragma: nocover
    ops.main(HarvesterExampleCharm)

#!/usr/bin/env python3
"""minimal-node: the smallest node charm that ships a collector to the Dwellir Harvester.

The ``Harvester`` object wires the collectors in ``collectors/`` into the harvester on the
machine (the subordinate charm ``dwellir-harvester`` runs it) and answers ``run-collectors``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import ops
from dwellir_harvester.charm import Harvester


class MinimalNodeCharm(ops.CharmBase):
    """Ships the collectors in ``collectors/`` to the harvester on its machine."""

    #: Keyword arguments for Harvester(): none on a unit; tests set a sandbox's paths here.
    harvester_args: ClassVar[dict[str, Any]] = {}

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.harvester = Harvester(self, "collectors", **self.harvester_args)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        names = ", ".join(self.harvester.collector_names)
        event.add_status(ops.ActiveStatus(f"ships {names} to the harvester"))
        event.add_status(self.harvester.status)  # blocked when the collectors cannot be wired in


if __name__ == "__main__":  # pragma: nocover
    ops.main(MinimalNodeCharm)

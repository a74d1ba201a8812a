"""The Dwellir Harvester for Juju charms: ship collectors in a charm with one line of code.

::

    import ops
    from dwellir_harvester.charm import Harvester

    class MyCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.harvester = Harvester(self, collector_dir="collectors")

The public API:

``Harvester(charm, collector_dir="collectors", *, collectors=None, collector_options=None,
config_dir="/etc/dwellir-harvester/config.d", snapshot_dir="/var/lib/dwellir-harvester/charms",
service="dwellir-harvester", action="run-collectors")``
    An ``ops.Object`` that observes the charm's own events. On install, upgrade-charm and
    config-changed it writes the drop-in ``<config_dir>/<app>.yaml`` (the charm's collector dir,
    collectors and options, in the runner's config format; atomically, only when it changes) and
    reloads the harvester's systemd service when it is running. On every hook it observes it
    refreshes ``<snapshot_dir>/<app>.json``, the charm's Juju context (topology, config with
    secrets redacted, relations without their data) for the runner's ``juju-charm`` collector. On
    remove it takes both away. It answers the ``run-collectors`` action (declared in the charm's
    ``charmcraft.yaml``) by running the collectors in the hook and returning the document.

    ``configure()`` re-wires after the charm changed ``collectors`` or ``collector_options``;
    ``collector_names``, ``dropin_path``, ``snapshot_path``, ``collector_dir``, ``problem`` and
    ``status`` (for ``collect_unit_status``) let the charm report what it wired.

``__version__``
    The version of ``dwellir-harvester-charm``.

Test-time code lives in ``dwellir_harvester.charm.testing`` (a sandbox for ops[testing] tests:
redirected paths and a fake systemd that keeps systemd's rules); it is not imported here.

The guide: ``docs/charm-authors.md``.
"""

from ._harvester import Harvester
from ._version import __version__

__all__ = ["Harvester", "__version__"]

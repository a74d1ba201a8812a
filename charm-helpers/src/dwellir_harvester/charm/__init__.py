"""The Dwellir Harvester for Juju charms: ship collectors in a charm with one line of code.

::

    import ops
    from dwellir_harvester.charm import Harvester

    class MyCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.harvester = Harvester(self, collector_dir="collectors")

The public API:

``Harvester(charm, collector_dir="collectors", *, collectors=None, exclude=(), ...)``
    The ops Object: it wires the charm's collectors into the harvester on the machine, leaves a
    snapshot of the charm's Juju context, and answers the ``run-collectors`` action. Its other
    arguments include ``collector_options`` and ``refresh_events``;
    ``set_collector_options(name, options)`` changes one collector's options in a handler. Its
    class docstring is the reference: every argument, the events it observes, the files it writes
    and their modes.

``ServiceManager``
    The protocol of Harvester's ``systemd`` argument (what reloads the harvester's service).

``__version__``
    The version of ``dwellir-harvester-charm``.

Test-time code lives in ``dwellir_harvester.charm.testing`` (a sandbox for ops[testing] tests and
a fake systemd that keeps systemd's rules, both handed to Harvester as constructor arguments); it
is not imported here.

The guide: ``docs/charm-authors.md``.
"""

from ._harvester import Harvester, ServiceManager
from ._version import __version__

__all__ = ["Harvester", "ServiceManager", "__version__"]

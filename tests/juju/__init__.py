"""A Juju machine without a controller: charms laid out as ``charmcraft pack`` would, driven through ``dispatch``.

Shared by the end-to-end tests of the example charm and the ``dwellir-harvester`` subordinate, and
made for the whole-machine test (both on one machine, the daemon running). Import it as
``tests.juju`` with the repository root on ``sys.path`` (a conftest adds it).

What a machine is
-----------------
:class:`Machine` is one filesystem root (``<tmp_path>/root``) with one systemd, one user database
and one Juju model, and any number of units on it. :meth:`Machine.deploy` lays out one charm:

- its project folder copied as ``charmcraft pack`` would pack it (what ``.jujuignore`` leaves out
  and ``tests/`` are not), ``metadata.yaml``/``actions.yaml``/``config.yaml`` split out of
  ``charmcraft.yaml``, charmcraft's own ``dispatch`` script, and the modes of a packed charm;
  at ``<root>/var/lib/juju/agents/unit-<app>-<n>/charm``, where the unit agent puts it;
- its own ``venv/``: this repository's three packages (installed by pip from their folders) and
  every distribution they need (copied from this environment), built once per session by
  :class:`VenvCache`, plus ``venv_extras`` that only this charm's venv gets (a project folder,
  installed by pip, or a module file or package, copied): a tiny test-only package proves which
  venv a collector ran in;
- one file the kit adds, ``src/on_test_machine.py``, which is the ``dispatch`` entrypoint: the
  charm subclassed with every path it writes under the machine's root. It works for a charm that
  follows either pattern of docs/charm-authors.md (section 7): a ``paths`` class attribute (a
  dataclass with a ``root`` field, replaced with the machine's root: the subordinate's
  ``workload.Paths``) or a ``harvester_args`` dict (given the Harvester's directories under the
  root, where ``dwellir_harvester.charm.testing.Sandbox`` puts them: the example charm). A
  ``systemd`` class attribute is left as it is: on this machine the real ``charmlibs.systemd``
  runs the machine's ``systemctl`` stand-in. A charm with neither attribute refuses to run (it
  would write the real machine);
- its own Juju state: name, leadership, config (the declared defaults), endpoints, action, status,
  logs, opened ports, and the hook tools in its own ``bin/``.

Shared by every unit of the machine: the stand-ins for ``systemctl`` (units are files in
``<root>/etc/systemd/system``; ``start`` really runs ``ExecStart`` as a process under the
machine's ``python3``, the base interpreter without site-packages, so everything must import from
a venv; ``reload`` sends SIGHUP, ``stop`` SIGTERM; output in ``<root>/var/log/<unit>.log``),
``getent`` and ``useradd``, the model's secrets and the relations. Every tool keeps the rules of the
real one (``tests/juju/hooktools.py`` lists them) and refuses what Juju refuses.

How a test uses it
------------------
::

    import pytest
    from tests.juju import Machine, VenvCache

    @pytest.fixture
    def machine(tmp_path, tmp_path_factory):
        with Machine(tmp_path, VenvCache.for_session(tmp_path_factory)) as machine:
            yield machine              # on exit: every daemon systemctl started is stopped

    def test_the_whole_machine(machine):
        node = machine.deploy(EXAMPLE_CHARM, venv_extras=[TINY_PACKAGE])   # harvester-example/0
        node.config(rpc_url="http://127.0.0.1:9944")                       # juju config (types checked)
        node.deploy()                                   # install, leader-elected, config-changed, start
        harvester = machine.deploy(SUBORDINATE_CHARM, principal=node)      # dwellir-harvester/0
        harvester.config(port=18090, auth_tokens=harvester.add_secret({"tokens": "t"}))
        harvester.deploy()
        relation = harvester.relate(node, "juju-info")  # relation-created, -joined, -changed on both
        assert harvester.status() == ("active", "...")
        document = json.loads(harvester.action("run-collectors").results["output"])
        node.config(rpc_url="")
        node.hook("config-changed")
        node.remove()                # subordinates first, then departed/broken, stop, remove
        assert machine.files() == {...}   # every file under the root but the agents' and the journal

A unit: :meth:`Unit.hook` (one hook; it must exit 0, as a hook in error fails the test),
:meth:`Unit.deploy`, :meth:`Unit.action` (params checked against the action's schema first:
:class:`ParamsRefusedError`; returns :class:`ActionRun`), :meth:`Unit.relate`, :meth:`Unit.depart`,
:meth:`Unit.remove`, :meth:`Unit.config`, :meth:`Unit.add_secret`/:meth:`Unit.grant_secret`; and
what to look at: :meth:`Unit.status`, :meth:`Unit.logs`, :meth:`Unit.calls`,
:meth:`Unit.tools_called`, :meth:`Unit.opened_ports`, :meth:`Unit.juju` (its whole Juju state),
``unit.charm`` (its charm dir), ``unit.runs``. The machine: :meth:`Machine.path` (``/etc/x`` under
the root), :meth:`Machine.files`, :meth:`Machine.state`/:meth:`Machine.update` (the stand-ins'
state, e.g. ``systemd.units``), :meth:`Machine.systemctl_calls`, :meth:`Machine.daemon_pids`.

Relations keep Juju's rules: endpoints must exist (every charm provides ``juju-info``), interfaces
match, one side provides and the other requires (peers are not modelled); a container-scoped
relation joins a subordinate to its own principal only. Relation hooks get ``JUJU_RELATION``,
``JUJU_RELATION_ID``, ``JUJU_REMOTE_APP`` and (but relation-created and -broken)
``JUJU_REMOTE_UNIT``; relation-departed also ``JUJU_DEPARTING_UNIT``.
"""

from __future__ import annotations

from .machine import ActionRun, HookRun, Machine, ParamsRefusedError, Relation, Unit, VenvCache, build_venv

__all__ = ["ActionRun", "HookRun", "Machine", "ParamsRefusedError", "Relation", "Unit", "VenvCache", "build_venv"]

"""What a charm author changes through Harvester: exclude, per-collector options, refresh events.

Each is used as the guide shows it: in the constructor, or in the charm's own handlers, with no
call of ``configure()`` by hand.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import ops
import pytest
from ops import testing

from dwellir_harvester.charm import Harvester
from dwellir_harvester.charm.testing import DropinWithdrawn


def action(ctx, kit, **params):
    ctx.run(ctx.on.action("run-collectors", params=params), kit.state())
    return ctx.action_results


def test_exclude_leaves_names_out_of_the_dropin_and_the_actions_default(context, sandbox, kit):
    ctx = context(exclude=["blocks", "host"])
    ctx.run(ctx.on.install(), kit.state())
    dropin = sandbox.read_dropin(kit.APP)
    assert dropin["collectors"] == ["peers"]  # the charm's own excluded one is simply not contributed
    assert dropin["exclude"] == ["host"]  # a name the charm does not ship: the harvester leaves it out

    document = json.loads(action(ctx, kit)["output"])
    assert document["harvester"]["collectors_used"] == ["peers", "juju-charm"]
    # Asked for by name, an excluded collector still runs.
    document = json.loads(action(ctx, kit, collectors="host blocks")["output"])
    assert document["harvester"]["collectors_used"] == ["host", "blocks"]


def test_excluding_juju_charm_means_no_snapshot_of_this_charm(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    assert sandbox.read_snapshot(kit.APP) is not None
    ctx = context(exclude=["juju-charm"])
    ctx.run(ctx.on.config_changed(), kit.state())
    assert sandbox.read_snapshot(kit.APP) is None  # the unit's own snapshot is removed
    assert "exclude" not in sandbox.read_dropin(kit.APP)  # other charms' contexts are not the charm's to drop
    database = testing.Relation("database")
    ctx.run(ctx.on.relation_created(database), kit.state(relations={database}))
    assert sandbox.read_snapshot(kit.APP) is None
    document = json.loads(action(ctx, kit)["output"])
    assert "juju-charm" not in document["collectors"]
    assert sandbox.read_snapshot(kit.APP) is None


def test_a_near_miss_in_exclude_blocks_and_says_why(context, sandbox, kit):
    ctx = context(exclude=["peres"])
    state = ctx.run(ctx.on.install(), kit.state())
    with pytest.raises(DropinWithdrawn, match=r"exclude: unknown collector 'peres' \(did you mean 'peers'\?\)"):
        sandbox.read_dropin(kit.APP)
    assert isinstance(state.unit_status, ops.BlockedStatus)


@pytest.mark.parametrize("value", ["host", ["host", 3], [""]])
def test_exclude_must_be_a_list_of_names(kit, charm_root, value):
    charm = kit.make_charm(exclude=value)
    ctx = testing.Context(kit.sandboxed(charm, None), meta=kit.metadata(), charm_root=charm_root, app_name=kit.APP)
    with pytest.raises(testing.errors.UncaughtCharmError, match="exclude must"):
        ctx.run(ctx.on.update_status(), kit.state())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"exclude": "blcoks"}, "exclude: unknown collector 'blcoks' (available: "),
        ({"exclude": "host blocks peers juju-charm"}, "nothing to run: exclude leaves out every collector"),
    ],
)
def test_the_actions_exclude_param(context, sandbox, kit, params, message):
    ctx = context()
    with pytest.raises(testing.ActionFailed) as failed:
        action(ctx, kit, **params)
    assert failed.value.message.startswith(message)


def test_the_actions_exclude_param_leaves_names_out(context, sandbox, kit):
    ctx = context()
    document = json.loads(action(ctx, kit, exclude="host, juju-charm")["output"])
    assert document["harvester"]["collectors_used"] == ["blocks", "peers"]
    document = json.loads(action(ctx, kit, collectors="peers blocks", exclude="blocks")["output"])
    assert document["harvester"]["collectors_used"] == ["peers"]


class OptionsCharm(ops.CharmBase):
    """Sets one collector's options from its own handler, as a charm does with relation data."""

    harvester_args: ClassVar[dict[str, Any] | None] = None

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        assert self.harvester_args is not None
        self.harvester = Harvester(self, collector_options={"peers": {"rpc_url": "http://a:1"}}, **self.harvester_args)
        framework.observe(self.on["node"].relation_changed, self._on_node_changed)

    def _on_node_changed(self, event: ops.RelationChangedEvent) -> None:
        url = event.relation.data[event.app].get("url") if event.app else None
        self.harvester.set_collector_options("peers", {"rpc_url": url} if url else None)


def test_set_collector_options_in_a_handler_rewires_at_the_end_of_the_hook(sandbox, charm_root, kit):
    ctx = testing.Context(
        kit.sandboxed(OptionsCharm, sandbox), meta=kit.metadata(), charm_root=charm_root, app_name=kit.APP
    )
    ctx.run(ctx.on.install(), kit.state())
    assert sandbox.read_dropin(kit.APP)["collector_options"] == {"peers": {"rpc_url": "http://a:1"}}
    sandbox.systemd.calls.clear()

    node = testing.Relation("node", remote_app_data={"url": "http://b:2"})
    ctx.run(ctx.on.relation_changed(node), kit.state(relations={node}))
    assert sandbox.read_dropin(kit.APP)["collector_options"] == {"peers": {"rpc_url": "http://b:2"}}
    assert sandbox.systemd.called("service_reload") == [("dwellir-harvester",)]  # once, at the end of the hook

    gone = testing.Relation("node")
    ctx.run(ctx.on.relation_changed(gone), kit.state(relations={gone}))
    assert "collector_options" not in sandbox.read_dropin(kit.APP)  # None removes that collector's options


def test_collector_options_cannot_be_replaced_or_changed_in_place(context, kit):
    ctx = context(collector_options={"peers": {"rpc_url": "http://a:1"}, "blocks": {}})
    with ctx(ctx.on.update_status(), kit.state()) as mgr:
        harvester = mgr.charm.harvester  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            harvester.collector_options = {"peers": {}}
        with pytest.raises(TypeError):
            harvester.collector_options["peers"] = {}
        with pytest.raises(TypeError):
            harvester.collector_options["peers"]["rpc_url"] = "http://b:2"
        harvester.set_collector_options("blocks", None)
        assert dict(harvester.collector_options) == {"peers": {"rpc_url": "http://a:1"}}
        with pytest.raises(TypeError, match="must be a mapping or None, not str"):
            harvester.set_collector_options("peers", "rpc_url=http://b:2")
        mgr.run()


class RefreshCharm(ops.CharmBase):
    """Computes its options in __init__ from relation data and names the event on which to re-wire."""

    harvester_args: ClassVar[dict[str, Any] | None] = None

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        assert self.harvester_args is not None
        relation = self.model.get_relation("node")
        url = relation.data[relation.app].get("url") if relation and relation.app else None
        self.harvester = Harvester(
            self,
            collectors=["peers"],
            collector_options={"peers": {"rpc_url": url}} if url else None,
            refresh_events=[self.on["node"].relation_changed],
            **self.harvester_args,
        )


def test_refresh_events_rewire_without_a_handler(sandbox, charm_root, kit):
    ctx = testing.Context(
        kit.sandboxed(RefreshCharm, sandbox), meta=kit.metadata(), charm_root=charm_root, app_name=kit.APP
    )
    node = testing.Relation("node", remote_app_data={"url": "http://b:2"})
    ctx.run(ctx.on.relation_changed(node), kit.state(relations={node}))
    assert sandbox.read_dropin(kit.APP)["collector_options"] == {"peers": {"rpc_url": "http://b:2"}}
    database = testing.Relation("database")
    ctx.run(ctx.on.relation_changed(database), kit.state(relations={database}))  # not a refresh event
    assert sandbox.read_dropin(kit.APP)["collector_options"] == {"peers": {"rpc_url": "http://b:2"}}


def test_refresh_events_must_be_bound_events(kit, charm_root):
    charm = kit.make_charm(refresh_events=["config-changed"])
    ctx = testing.Context(kit.sandboxed(charm, None), meta=kit.metadata(), charm_root=charm_root, app_name=kit.APP)
    with pytest.raises(testing.errors.UncaughtCharmError, match="refresh_events must be bound events"):
        ctx.run(ctx.on.update_status(), kit.state())

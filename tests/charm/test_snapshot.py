"""The Juju context snapshot (format 1) that the runner's juju-charm collector reads."""

from __future__ import annotations

import json
import stat
from datetime import datetime

import pytest
from ops import testing


def related_state(kit, **kwargs):
    secret = testing.Secret({"token": "s3cr3t-value"})
    database = testing.Relation(
        "database",
        remote_app_name="postgresql",
        remote_app_data={"password": "db-pa55", "endpoints": "10.0.0.9:5432"},
        remote_units_data={0: {"ingress": "10.0.0.9"}, 1: {"ingress": "10.0.0.10"}},
        local_app_data={"database": "local-db-name"},
    )
    cluster = testing.PeerRelation("cluster", peers_data={1: {"seed": "peer-seed-data"}})
    return kit.state(
        leader=True,
        config={"credentials": secret.id, "api-key": "live-api-key", "log-level": "debug"},
        relations=[database, cluster],
        secrets=[secret],
        **kwargs,
    )


def test_snapshot_content_redacts_secrets_and_never_holds_relation_data(context, sandbox, kit):
    ctx = context(app_name="harvested")
    ctx.run(ctx.on.config_changed(), related_state(kit))

    path = sandbox.snapshot_path(kit.APP)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    text = path.read_text()
    snapshot = json.loads(text)
    assert datetime.fromisoformat(snapshot.pop("updated")).utcoffset() is not None  # RFC 3339, with offset
    assert snapshot == {
        "format": 1,
        "topology": {
            "model": "prod",
            "model_uuid": kit.MODEL.uuid,
            "application": "harvested",
            "unit": "harvested/0",
            "charm": "harvested",
            "leader": True,
        },
        "config": {
            "rpc-url": "http://127.0.0.1:9944",
            "api-key": "<redacted>",
            "password": "<redacted>",
            "credentials": "<redacted>",
            "log-level": "debug",
            "peers-wanted": 8,
        },
        "relations": [
            {"endpoint": "database", "interface": "postgresql_client", "remote_application": "postgresql", "units": 2},
            {"endpoint": "cluster", "interface": "harvested-peers", "remote_application": "harvested", "units": 1},
        ],
    }
    for leaked in ("live-api-key", "hunter2", "secret:", "db-pa55", "10.0.0.9", "peer-seed-data", "local-db-name"):
        assert leaked not in text


def test_redaction_matches_names_case_insensitively(context, sandbox, kit):
    meta = kit.metadata()
    meta["config"]["options"].update(
        {
            "Auth-TOKEN": {"type": "string", "default": "t"},
            "ssh_key_path": {"type": "string", "default": "/k"},
            "SecretSauce": {"type": "boolean", "default": True},
            "port": {"type": "int", "default": 9944},
        }
    )
    charm = kit.sandboxed(kit.make_charm(), sandbox)
    with testing.Context(charm, meta=meta, charm_root=sandbox.root.parent / "charm") as ctx:
        ctx.run(ctx.on.install(), kit.state())
    config = sandbox.read_snapshot(kit.APP)["config"]
    assert config["Auth-TOKEN"] == config["ssh_key_path"] == config["SecretSauce"] == "<redacted>"
    assert config["port"] == 9944


def test_snapshot_is_written_only_when_its_content_changes(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    path = sandbox.snapshot_path(kit.APP)
    # Age the timestamp: if `updated` took part in the comparison, the next hook would rewrite it.
    old = json.loads(path.read_text())
    old["updated"] = "2000-01-01T00:00:00+00:00"
    path.write_text(json.dumps(old, indent=2) + "\n")
    before = kit.stat_of(path)

    ctx.run(ctx.on.config_changed(), kit.state())
    ctx.run(ctx.on.leader_elected(), kit.state())  # leader stays False: nothing changed
    assert kit.stat_of(path) == before

    ctx.run(ctx.on.leader_elected(), kit.state(leader=True))
    snapshot = json.loads(path.read_text())
    assert kit.stat_of(path) != before
    assert snapshot["topology"]["leader"] is True
    assert datetime.fromisoformat(snapshot["updated"]).year > 2000


def test_relation_events_refresh_the_relations(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    assert sandbox.read_snapshot(kit.APP)["relations"] == []

    node = testing.Relation("node", interface="blockchain-rpc", remote_app_name="erigon", remote_units_data={3: {}})
    ctx.run(ctx.on.relation_joined(node, remote_unit=3), kit.state(relations=[node]))
    assert sandbox.read_snapshot(kit.APP)["relations"] == [
        {"endpoint": "node", "interface": "blockchain-rpc", "remote_application": "erigon", "units": 1}
    ]


def test_remove_keeps_a_snapshot_another_unit_wrote(context, sandbox, kit):
    ctx = context()
    ctx.run(ctx.on.install(), kit.state())
    path = sandbox.snapshot_path(kit.APP)
    other = json.loads(path.read_text())
    other["topology"]["unit"] = "harvested/1"
    path.write_text(json.dumps(other))

    ctx.run(ctx.on.remove(), kit.state())
    assert json.loads(path.read_text())["topology"]["unit"] == "harvested/1"
    assert not sandbox.dropin_path(kit.APP).exists()


def test_the_runners_juju_charm_collector_reads_the_snapshot_as_the_action_reports_it(context, sandbox, kit):
    """The contract with the runner's built-in juju-charm collector (skipped where it is not installed)."""
    pytest.importorskip("dwellir_harvester.collectors.juju_charm")
    from dwellir_harvester.lib import harvest, load_collectors

    ctx = context()
    state = related_state(kit)
    ctx.run(ctx.on.config_changed(), state)
    ctx.run(ctx.on.action("run-collectors", params={"collectors": "juju-charm"}), state)
    live = json.loads(ctx.action_results["output"])["collectors"]["juju-charm"]["data"]["applications"]["harvested"]

    document = harvest(
        ["builtin::juju-charm"],
        registry=load_collectors(env=False, builtin_distribution="dwellir-harvester"),
        options={"juju-charm": {"snapshot_dir": str(sandbox.snapshot_dir)}},
    )
    entry = document["collectors"]["builtin::juju-charm"]
    assert entry["meta"]["status"] == "success", entry["meta"]["errors"]
    read = entry["data"]["applications"]["harvested"]
    assert list(entry["data"]["applications"]) == ["harvested"]
    assert {k: v for k, v in read.items() if k != "updated"} == {k: v for k, v in live.items() if k != "updated"}

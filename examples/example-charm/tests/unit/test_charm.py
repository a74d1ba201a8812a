"""The charm's hooks in ops[testing]: the drop-in and snapshot it leaves, what systemd is asked, the status."""

from __future__ import annotations

import dataclasses
import stat
import sys

import pytest
import yaml
from ops import testing

from dwellir_harvester.config import load_settings

RELOAD = ("service_reload", "dwellir-harvester")
ASKED = ("service_running", "dwellir-harvester")


def installed(run, machine, unit, **state_kwargs):
    """Run install and forget the systemd calls so far."""
    out = run("install", unit.state(**state_kwargs))
    machine.systemd.calls.clear()
    return out


def changed_since(machine, before):
    return {path for path, st in machine.files().items() if before.get(path) != st}


# --- install ---------------------------------------------------------------------------------


def test_install_wires_both_collectors_in_and_reloads_the_subordinates_service(run, machine, unit, node, charm_root):
    out = run("install", unit.state(config={"rpc-url": node.url}))

    dropin = machine.sandbox.read_dropin(unit.APP)
    assert dropin["collectors"] == ["unit-facts", "polkadot"]
    assert dropin["collector_paths"] == [str(charm_root / "collectors")]
    assert dropin["collector_options"]["polkadot"] == {"rpc_url": node.url}
    facts = dropin["collector_options"]["unit-facts"]
    assert (facts["application"], facts["unit"], facts["model"]) == (unit.APP, "harvester-example/0", "prod")
    assert facts["config"] == {"rpc-url": node.url}
    assert dropin["python"] == sys.executable
    assert stat.S_IMODE(machine.dropin.stat().st_mode) == 0o644
    assert machine.sandbox.read_snapshot(unit.APP)["topology"]["unit"] == "harvester-example/0"

    # The charm runs no daemon: it only reloads the subordinate's, which reads the new drop-in.
    assert machine.systemd.calls == [ASKED, RELOAD]
    assert set(machine.files()) == {
        "etc/dwellir-harvester/config.d/harvester-example.yaml",
        "var/lib/dwellir-harvester/charms/harvester-example.json",
    }
    assert out.unit_status == testing.ActiveStatus("ships unit-facts, polkadot to the harvester")


def test_the_dropin_is_what_the_runner_loads(run, machine, unit, node, charm_root):
    run("install", unit.state(config={"rpc-url": node.url}))

    main = machine.root / "etc" / "dwellir-harvester" / "config.yaml"
    main.write_text("collectors: [host]\n")  # what the subordinate writes; the drop-in adds to it
    settings = load_settings(environ={"HARVESTER_CONFIG": str(main)})
    assert settings.files == [str(main), str(machine.dropin)]
    assert settings.collectors == ["host", "unit-facts", "polkadot"]
    assert [p.path for p in settings.collector_paths] == [str(charm_root / "collectors")]
    assert settings.collector_options["polkadot"] == {"rpc_url": node.url}


def test_without_the_subordinate_install_writes_the_dropin_and_reloads_nothing(run, machine, unit):
    machine.systemd.uninstall(unit.SERVICE)

    out = run("install", unit.state())

    assert machine.sandbox.read_dropin(unit.APP)["collectors"] == ["unit-facts", "polkadot"]
    assert machine.systemd.calls == [ASKED]  # not running: it reads the drop-in when it starts
    assert out.unit_status.name == "active"


# --- idempotency -----------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["config_changed", "upgrade_charm", "start", "update_status"])
def test_a_hook_where_nothing_changed_writes_nothing_and_reloads_nothing(run, machine, unit, node, event):
    out = installed(run, machine, unit, config={"rpc-url": node.url})
    before = machine.files()

    out = run(event, out)
    out = run(event, out)

    assert machine.files() == before  # same inodes, same mtimes: nothing rewritten
    assert RELOAD not in machine.systemd.calls
    assert out.unit_status.name == "active"


def test_a_changed_rpc_url_rewrites_the_dropin_and_reloads_once(run, machine, unit, node):
    installed(run, machine, unit, config={"rpc-url": node.url})
    before = machine.files()

    run("config_changed", unit.state(config={"rpc-url": "http://10.0.0.7:9944"}))

    assert changed_since(machine, before) == {
        "etc/dwellir-harvester/config.d/harvester-example.yaml",
        "var/lib/dwellir-harvester/charms/harvester-example.json",
    }
    assert machine.sandbox.read_dropin(unit.APP)["collector_options"]["polkadot"] == {"rpc_url": "http://10.0.0.7:9944"}
    assert machine.systemd.calls == [ASKED, RELOAD]


def test_an_empty_rpc_url_contributes_no_chain_collector(run, machine, unit):
    out = run("install", unit.state(config={"rpc-url": ""}))

    dropin = machine.sandbox.read_dropin(unit.APP)
    assert dropin["collectors"] == ["unit-facts"]
    assert "polkadot" not in dropin["collector_options"]
    assert out.unit_status == testing.ActiveStatus("ships unit-facts to the harvester")


# --- bad config ------------------------------------------------------------------------------

BAD_URLS = [
    ("http://admin:hunter2@127.0.0.1:9944", "rpc-url must not hold credentials"),
    ("http://127.0.0.1:9944/?token=hunter2", "rpc-url must not hold credentials"),
    ("ftp://127.0.0.1/", "rpc-url must be an http:// or https:// URL with a host, not 'ftp://127.0.0.1/'"),
    ("http://127.0.0.1:99999", "rpc-url 'http://127.0.0.1:99999' is not a valid URL"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_bad_rpc_url_blocks_with_the_reason_and_keeps_the_last_good_dropin(run, machine, unit, node, url, message):
    installed(run, machine, unit, config={"rpc-url": node.url})
    before = machine.files()

    out = run("config_changed", unit.state(config={"rpc-url": url}))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(message)
    assert "\n" not in out.unit_status.message
    assert "hunter2" not in out.unit_status.message
    # The drop-in keeps its last good collectors and options; only the snapshot of the charm's
    # Juju context follows what Juju has configured (with the credentials redacted).
    assert changed_since(machine, before) == {"var/lib/dwellir-harvester/charms/harvester-example.json"}
    assert machine.sandbox.read_dropin(unit.APP)["collector_options"]["polkadot"] == {"rpc_url": node.url}
    assert RELOAD not in machine.systemd.calls
    for path in machine.root.rglob("*"):
        if path.is_file():
            assert "hunter2" not in path.read_text(), path

    # Fixing the config applies it again.
    out = run("config_changed", unit.state(config={"rpc-url": "http://10.0.0.7:9944"}))
    assert out.unit_status.name == "active"
    assert machine.sandbox.read_dropin(unit.APP)["collector_options"]["polkadot"] == {"rpc_url": "http://10.0.0.7:9944"}


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_bad_rpc_url_at_install_wires_only_unit_facts(run, machine, unit, url, message):
    out = run("install", unit.state(config={"rpc-url": url}))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(message)
    dropin = machine.sandbox.read_dropin(unit.APP)
    assert dropin["collectors"] == ["unit-facts"]
    assert "polkadot" not in dropin["collector_options"]
    assert "hunter2" not in machine.dropin.read_text()
    assert "hunter2" not in machine.snapshot.read_text()


def test_a_dropin_that_cannot_be_read_back_is_rewritten_from_the_good_part_of_the_config(run, machine, unit):
    """A bad config keeps the last good drop-in; with no usable one, the charm wires what it can."""
    machine.dropin.parent.mkdir(parents=True)
    machine.dropin.write_text("collectors: {not: a list}\n")

    out = run("config_changed", unit.state(config={"rpc-url": "ftp://x/"}))

    assert out.unit_status.name == "blocked"
    assert machine.sandbox.read_dropin(unit.APP)["collectors"] == ["unit-facts"]


# --- what unit-facts is told -----------------------------------------------------------------


def test_unit_facts_never_gets_a_secret_from_the_config(machine, unit, charm_root, kit):
    """The drop-in is world-readable: options named like secrets and URL credentials are redacted."""
    project = yaml.safe_load((kit.CHARM_DIR / "charmcraft.yaml").read_text())
    options = {**project["config"]["options"], "api-key": {"type": "string"}, "peer-url": {"type": "string"}}
    ctx = testing.Context(
        unit.on_machine(machine),
        meta={key: project[key] for key in ("name", "summary", "description")},
        config={"options": options},
        actions=project["actions"],
        charm_root=charm_root,
        app_name=unit.APP,
    )
    config = {"api-key": "k-secret-1", "peer-url": "https://u:p-secret-2@peer:1/"}
    ctx.run(ctx.on.install(), unit.state(config=config))

    facts = machine.sandbox.read_dropin(unit.APP)["collector_options"]["unit-facts"]["config"]
    assert facts == {
        "api-key": "<redacted>",
        "peer-url": "https://<redacted>@peer:1/",
        "rpc-url": "http://127.0.0.1:9944",
    }
    text = machine.dropin.read_text()
    assert "k-secret-1" not in text and "p-secret-2" not in text


# --- remove, leader-elected ------------------------------------------------------------------


def test_remove_takes_the_dropin_and_snapshot_away_and_reloads(run, machine, unit):
    out = installed(run, machine, unit)

    run("remove", out)

    assert machine.files() == {}
    assert machine.systemd.calls == [ASKED, RELOAD]  # the harvester stops running the collectors


def test_remove_before_install_is_harmless(run, machine, unit):
    run("remove", unit.state())

    assert machine.systemd.calls == []
    assert machine.files() == {}


def test_leader_elected_refreshes_the_snapshot_only(run, machine, unit):
    out = installed(run, machine, unit)
    before = machine.files()

    run("leader_elected", dataclasses.replace(out, leader=True))

    assert changed_since(machine, before) == {"var/lib/dwellir-harvester/charms/harvester-example.json"}
    assert machine.sandbox.read_snapshot(unit.APP)["topology"]["leader"] is True
    assert machine.systemd.calls == []

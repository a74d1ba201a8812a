"""The charm's hooks in ops[testing]: what lands on the machine, what systemd is asked, the status."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest
import yaml
from ops import testing

from dwellir_harvester.charm.testing import FakeService
from dwellir_harvester.config import load_settings

SERVICE = "dwellir-harvester"
TOKENS = ("tok-5f0c1e9a7b", "tok-9d2b4a6c8e")


def installed(run, machine, unit, **state_kwargs):
    """Run install (the service is running after it), and forget the systemd calls so far."""
    out = run("install", unit.state(**state_kwargs))
    assert machine.systemd.state(SERVICE) == "active"
    machine.systemd.calls.clear()
    return out


def changed_files(machine, before):
    return {path for path, st in machine.files().items() if before.get(path) != st}


# --- install ---------------------------------------------------------------------------------


def test_install_creates_the_user_writes_the_unit_and_the_config_and_starts_the_service(
    run, machine, unit, charm_root, sub
):
    out = run("install", unit.state())

    useradd = [call for call in machine.tool_calls() if call[0] == "useradd"]
    assert useradd == [
        [
            *("useradd", "--system", "--user-group", "--no-create-home"),
            *("--home-dir", str(machine.paths.state_dir), "--shell", "/usr/sbin/nologin", "dwellir-harvester"),
        ]
    ]
    text = machine.paths.unit_file.read_text()
    assert text == sub.workload.render_unit(charm_root, machine.paths)
    assert "\nUser=dwellir-harvester\n" in text
    assert "\nExecStart=/usr/bin/python3 -m dwellir_harvester.cli serve\n" in text
    assert f"\nEnvironment=PYTHONPATH={charm_root / 'venv'}\n" in text
    assert f"\nEnvironment=HARVESTER_CONFIG={machine.paths.main_config}\n" in text
    assert stat.S_IMODE(machine.paths.unit_file.stat().st_mode) == 0o644
    assert machine.systemd.calls == [
        ("daemon_reload",),
        ("service_enable", SERVICE),
        ("service_running", SERVICE),
        ("service_start", SERVICE),
    ]
    assert machine.systemd.services[SERVICE].enabled
    assert machine.systemd.warnings == []
    assert out.unit_status == testing.ActiveStatus("serving 3 collectors on 127.0.0.1:18080")
    assert out.workload_version == sub.workload.runner_version()
    assert out.opened_ports == frozenset()
    assert machine.paths.owner_file.read_text() == "dwellir-harvester/0\n"


def test_the_main_config_is_what_the_runner_loads_with_the_principals_dropins(run, machine, unit):
    machine.add_principal("my-node", {"peers": "return {'peers': 3}"})
    run(
        "install",
        unit.state(
            config={
                "port": 19000,
                "interval": 60,
                "collectors": "null",
                "exclude-collectors": "juju peers nope",
                "worker-memory-mb": 256,
                "log-level": "debug",
            }
        ),
    )

    main = machine.paths.main_config
    assert stat.S_IMODE(main.stat().st_mode) == 0o644
    settings = load_settings({"config": str(main)}, environ={})
    assert settings.files == [str(main), str(machine.paths.config_dir / "my-node.yaml")]
    assert (settings.host, settings.port, settings.interval) == ("127.0.0.1", 19000, 60)
    assert settings.collectors == ["host", "null", "peers"]
    assert settings.exclude == ["juju", "peers"]  # nope: nothing provides it, so it is left out
    assert (settings.worker_memory_mb, settings.log_level) == (256, "DEBUG")
    assert settings.output == str(machine.paths.output)
    assert settings.collector_options["juju-charm"] == {"snapshot_dir": str(machine.paths.snapshot_dir)}
    assert settings.collector_options["juju"] == {"agents_dir": str(machine.paths.agents_dir)}  # not the host's
    assert settings.auth == "optional" and settings.auth_token_file is None


def test_install_keeps_an_existing_service_user(run, machine, unit):
    machine.add_user("dwellir-harvester")
    run("install", unit.state())

    assert [call[0] for call in machine.tool_calls()] == ["getent"]


def test_a_user_that_cannot_be_created_blocks_and_nothing_is_written_or_started(run, machine, unit):
    machine.fail_useradd("useradd: cannot lock /etc/passwd; try again later.")

    out = run("install", unit.state())

    assert out.unit_status == testing.BlockedStatus(
        "cannot create the service user: useradd dwellir-harvester failed (exit 1): "
        "useradd: cannot lock /etc/passwd; try again later."
    )
    assert not machine.paths.unit_file.exists()
    assert not machine.paths.main_config.exists()
    assert machine.systemd.mutations() == []


def test_a_service_that_fails_to_start_blocks_the_unit(run, machine, unit):
    machine.systemd.services[SERVICE] = FakeService(masked=True)
    out = run("install", unit.state())

    assert out.unit_status == testing.BlockedStatus(
        "systemctl start dwellir-harvester failed: see `journalctl -u dwellir-harvester`"
    )


# --- idempotency -----------------------------------------------------------------------------


def test_a_second_config_changed_writes_nothing_and_reloads_nothing(run, machine, unit):
    machine.add_principal("my-node", {"peers": "return {}"})
    out = installed(run, machine, unit)
    before = machine.files()

    out = run("config_changed", out)
    out = run("config_changed", out)

    assert machine.files() == before  # same inodes, same mtimes: nothing rewritten
    assert machine.systemd.calls == [("service_running", SERVICE)] * 2  # asked, never told
    assert out.unit_status == testing.ActiveStatus("serving 4 collectors (from charms my-node) on 127.0.0.1:18080")


@pytest.mark.parametrize("event", ["start", "update_status", "upgrade_charm"])
def test_other_hooks_change_nothing_that_did_not_change(run, machine, unit, event):
    out = installed(run, machine, unit)
    before = machine.files()

    run(event, out)

    if event == "upgrade_charm":  # the venv the daemon runs from was replaced: restart it
        assert machine.systemd.mutations() == [("service_restart", SERVICE)]
    else:
        assert machine.systemd.mutations() == []
    assert machine.files() == before


@pytest.mark.parametrize("event", ["relation_joined", "relation_changed", "relation_departed", "relation_broken"])
def test_the_relation_hooks_report_the_principals_dropins(run, machine, unit, event):
    relation = testing.SubordinateRelation("juju-info", remote_app_name="my-node")
    out = installed(run, machine, unit, relations={relation})
    machine.add_principal("my-node", {"peers": "return {}", "height": "return {}"})
    machine.add_principal("other-node", {"blocks": "return {}"})
    before = machine.files()

    out = run(event, out, relation)

    assert out.unit_status == testing.ActiveStatus(
        "serving 6 collectors (from charms my-node, other-node) on 127.0.0.1:18080"
    )
    assert machine.files() == before
    assert machine.systemd.mutations() == []  # each principal's Harvester reloads after its own drop-in


# --- restart or reload -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("interval", 30),
        ("collectors", "null"),
        ("exclude-collectors", "juju"),
        ("log-level", "DEBUG"),
        ("worker-memory-mb", 512),
    ],
)
def test_what_the_daemon_rereads_is_reloaded(run, machine, unit, option, value):
    out = installed(run, machine, unit)
    run("config_changed", dataclasses.replace(out, config={option: value}))

    assert machine.systemd.mutations() == [("service_reload", SERVICE)]
    assert machine.systemd.warnings == []


@pytest.mark.parametrize(("option", "value"), [("port", 18081), ("bind-address", "127.0.0.2")])
def test_a_changed_port_or_address_restarts_the_daemon(run, machine, unit, option, value):
    out = installed(run, machine, unit)
    out = run("config_changed", dataclasses.replace(out, config={option: value}))

    assert machine.systemd.mutations() == [("service_restart", SERVICE)]
    host, port = ("127.0.0.2", 18080) if option == "bind-address" else ("127.0.0.1", 18081)
    assert out.unit_status.message.endswith(f" on {host}:{port}")


def test_a_changed_unit_file_is_loaded_and_restarts_the_daemon(run, machine, unit):
    out = installed(run, machine, unit)
    machine.paths.unit_file.write_text("[Service]\nExecStart=/bin/true\n")  # an older charm's unit

    run("upgrade_charm", out)

    assert machine.systemd.mutations() == [
        ("daemon_reload",),
        ("service_enable", SERVICE),
        ("service_restart", SERVICE),
    ]
    assert machine.systemd.warnings == []


def test_a_stopped_service_is_started_again(run, machine, unit):
    out = installed(run, machine, unit)
    machine.systemd.services[SERVICE].state = "failed"

    status = run("update_status", out).unit_status
    # update-status starts it again, and says so only when that fails
    assert machine.systemd.mutations() == [("service_start", SERVICE)]
    assert status.name == "active"

    machine.systemd.services[SERVICE].masked = True
    machine.systemd.services[SERVICE].state = "failed"
    status = run("update_status", out).unit_status
    assert status == testing.BlockedStatus(
        "systemctl start dwellir-harvester failed: see `journalctl -u dwellir-harvester`"
    )


# --- ports -----------------------------------------------------------------------------------


def test_the_port_is_opened_only_beyond_loopback(run, machine, unit):
    out = run("install", unit.state(config={"bind-address": "0.0.0.0", "port": 18090}))
    assert out.opened_ports == frozenset({testing.TCPPort(18090)})

    out = run("config_changed", dataclasses.replace(out, config={"bind-address": "10.1.2.3", "port": 18091}))
    assert out.opened_ports == frozenset({testing.TCPPort(18091)})

    out = run("config_changed", dataclasses.replace(out, config={"bind-address": "localhost", "port": 18091}))
    assert out.opened_ports == frozenset()


def test_a_bad_config_leaves_the_ports_as_they_are(run, machine, unit):
    out = run("install", unit.state(config={"bind-address": "0.0.0.0"}))
    out = run("config_changed", dataclasses.replace(out, config={"bind-address": "0.0.0.0", "port": 0}))

    assert out.unit_status.name == "blocked"
    assert out.opened_ports == frozenset({testing.TCPPort(18080)})


# --- tokens from the Juju secret -------------------------------------------------------------


def token_gid():
    """A group the service user gets that differs from ours, when the tests may give files to it."""
    return 4242 if os.geteuid() == 0 else os.getgid()


def test_the_secret_becomes_the_token_file_and_is_never_shown(run, machine, unit, ctx):
    machine.add_user("dwellir-harvester", gid=token_gid())
    secret = testing.Secret({"tokens": " ".join(TOKENS)})
    out = run("install", unit.state(config={"auth-tokens": secret.id}, secrets={secret}))
    out = run("config_changed", out)

    path = machine.paths.token_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_gid == token_gid()
    assert yaml.safe_load(path.read_text()) == [
        {"token": TOKENS[0], "label": "juju-secret-1", "enabled": True},
        {"token": TOKENS[1], "label": "juju-secret-2", "enabled": True},
    ]
    main = yaml.safe_load(machine.paths.main_config.read_text())
    assert (main["auth_token_file"], main["auth"]) == (str(path), "required")
    assert out.unit_status.name == "active"
    logs = "\n".join(entry.message for entry in ctx.juju_log)
    others = [p for p in machine.root.rglob("*") if p.is_file() and p != path]
    for token in TOKENS:
        assert token not in logs
        assert token not in out.unit_status.message
        assert all(token not in other.read_text() for other in others)


def test_a_token_list_in_the_daemons_format_keeps_labels_and_revoked_tokens(run, machine, unit):
    content = yaml.safe_dump(
        [{"token": TOKENS[0], "label": "grafana"}, {"token": TOKENS[1], "label": "old-laptop", "enabled": False}]
    )
    secret = testing.Secret({"tokens": content})
    run("install", unit.state(config={"auth-tokens": secret.id}, secrets={secret}))

    assert yaml.safe_load(machine.paths.token_file.read_text()) == [
        {"token": TOKENS[0], "label": "grafana", "enabled": True},
        {"token": TOKENS[1], "label": "old-laptop", "enabled": False},
    ]


def test_a_new_secret_revision_rewrites_the_token_file_and_reloads(run, machine, unit, ctx):
    secret = testing.Secret({"tokens": TOKENS[0]})
    out = installed(run, machine, unit, config={"auth-tokens": secret.id}, secrets={secret})

    updated = dataclasses.replace(secret, latest_content={"tokens": TOKENS[1]})  # juju update-secret
    ctx.run(ctx.on.secret_changed(updated), dataclasses.replace(out, secrets={updated}))

    assert TOKENS[1] in machine.paths.token_file.read_text()
    assert TOKENS[0] not in machine.paths.token_file.read_text()
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]


def test_unsetting_the_secret_removes_the_token_file_allows_no_auth_and_reloads(run, machine, unit):
    secret = testing.Secret({"tokens": TOKENS[0]})
    installed(run, machine, unit, config={"auth-tokens": secret.id}, secrets={secret})

    run("config_changed", unit.state())

    assert not machine.paths.token_file.exists()
    main = yaml.safe_load(machine.paths.main_config.read_text())
    assert "auth_token_file" not in main
    assert main["auth"] == "optional"  # else the daemon refuses a reload that removes every token
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]


def test_a_secret_that_is_missing_or_not_granted_blocks_and_writes_nothing(run, machine, unit):
    missing = "secret:" + "a" * 20
    out = run("install", unit.state(config={"auth-tokens": missing}))

    assert out.unit_status == testing.BlockedStatus(
        f"the auth-tokens secret {missing} does not exist or is not granted to dwellir-harvester"
    )
    assert not machine.paths.main_config.exists()
    assert not machine.paths.token_file.exists()
    assert ("service_start", SERVICE) not in machine.systemd.calls  # nothing good to start with


def test_losing_access_to_the_secret_keeps_the_last_good_files(run, machine, unit):
    secret = testing.Secret({"tokens": TOKENS[0]})
    installed(run, machine, unit, config={"auth-tokens": secret.id}, secrets={secret})
    before = machine.files()

    out = run("config_changed", unit.state(config={"auth-tokens": secret.id}))  # revoked: gone from the state

    assert out.unit_status.name == "blocked"
    assert "does not exist or is not granted" in out.unit_status.message
    assert machine.files() == before
    assert machine.systemd.mutations() == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"token": "s3cr3t-value"}, "has no key 'tokens'"),
        ({"tokens": "[s3cr3t-value, {token: "}, "is not valid YAML (line 1)"),
        ({"tokens": "{token: s3cr3t-value}"}, "must be tokens separated by spaces or commas"),
        ({"tokens": "- {token: s3cr3t-value, enabled: false}"}, "holds no enabled token"),
        ({"tokens": "- {token: s3cr3t-value, enabled: 'no'}"}, "entry 1: enabled must be true or false"),
        ({"tokens": "- {token: s3cr3t-value, owner: me}"}, "entry 1 has an unknown key 'owner'"),
        ({"tokens": "- 12345"}, "entry 1: a token must be a non-empty string"),
    ],
)
def test_malformed_tokens_block_without_showing_them(run, machine, unit, ctx, content, reason):
    secret = testing.Secret(content)
    out = run("install", unit.state(config={"auth-tokens": secret.id}, secrets={secret}))

    assert out.unit_status.name == "blocked"
    assert reason in out.unit_status.message
    assert "s3cr3t-value" not in out.unit_status.message
    assert all("s3cr3t-value" not in entry.message for entry in ctx.juju_log)
    assert not machine.paths.token_file.exists()
    assert not machine.paths.main_config.exists()


# --- bad config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"port": 0}, "port must be a whole number from 1 to 65535, not 0"),
        ({"port": 70000}, "port must be a whole number from 1 to 65535, not 70000"),
        ({"bind-address": "not an address"}, "bind-address 'not an address' is not an IP address or host name"),
        ({"interval": 0}, "interval must be a whole number from 1 to 86400, not 0"),
        ({"worker-memory-mb": 8}, "worker-memory-mb must be a whole number from 32 to 1048576, not 8"),
        ({"log-level": "LOUD"}, "log-level must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'"),
        ({"collectors": "host, nope"}, "unknown collector 'nope' in collectors (the runner's: "),
        ({"exclude-collectors": "a/b"}, "exclude-collectors holds 'a/b', which is not a collector name"),
    ],
)
def test_bad_config_blocks_with_the_reason_and_applies_nothing(run, machine, unit, config, message):
    installed(run, machine, unit)
    before = machine.files()

    out = run("config_changed", unit.state(config=config))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(message)
    assert machine.files() == before
    assert machine.systemd.mutations() == []


# --- the principals' drop-ins ----------------------------------------------------------------


def test_a_dropin_that_does_not_parse_blocks_with_its_name(run, machine, unit):
    out = installed(run, machine, unit)
    machine.paths.config_dir.mkdir(parents=True, exist_ok=True)
    bad = machine.paths.config_dir / "broken-node.yaml"
    bad.write_text("collectors: [a\n")

    out = run("update_status", out)

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"{bad}: left out: ")
    assert bad.read_text() == "collectors: [a\n"  # never touched


def test_a_principals_withdrawn_dropin_blocks_with_its_charms_reason(run, machine, unit):
    """A principal whose collectors cannot be wired in leaves only why; the machine's status says it."""
    out = installed(run, machine, unit)
    machine.paths.config_dir.mkdir(parents=True, exist_ok=True)
    withdrawn = machine.paths.config_dir / "my-node.yaml"
    withdrawn.write_text("withdrawn: \"unknown collector 'peres' (did you mean 'peers'?)\"\n")

    out = run("update_status", out)

    assert out.unit_status == testing.BlockedStatus(
        f"{withdrawn}: withdrawn by its charm: unknown collector 'peres' (did you mean 'peers'?)"
    )


def test_the_daemons_problems_block_the_unit(run, machine, unit):
    out = installed(run, machine, unit)
    problems = [
        {"where": "/etc/dwellir-harvester/config.d/a.yaml", "problem": "left out: unknown collector 'x'"},
        {"where": "worker my-node", "problem": "cannot start: no such python"},
    ]
    machine.paths.output.write_text(json.dumps({"harvester": {"problems": problems}, "collectors": {}}))

    out = run("update_status", out)

    assert out.unit_status == testing.BlockedStatus(
        "/etc/dwellir-harvester/config.d/a.yaml: left out: unknown collector 'x'"
        " (and 1 more: run the show-config action)"
    )


def test_the_status_lists_a_bounded_number_of_charms(run, machine, unit):
    for i in range(12):
        machine.add_principal(f"node-{i:02}", {f"c{i}": "return {}"})
    out = run("install", unit.state())

    assert out.unit_status.message == (
        "serving 15 collectors (from charms node-00, node-01, node-02, node-03, node-04, node-05, node-06, "
        "node-07, node-08, node-09 and 2 more) on 127.0.0.1:18080"
    )


# --- remove ----------------------------------------------------------------------------------


def test_remove_stops_disables_and_cleans_up_but_leaves_the_principals_files(run, machine, unit):
    dropin = machine.add_principal("my-node", {"peers": "return {}"})
    machine.paths.snapshot_dir.mkdir(parents=True)
    snapshot = machine.paths.snapshot_dir / "my-node.json"
    snapshot.write_text("{}")
    secret = testing.Secret({"tokens": TOKENS[0]})
    out = installed(run, machine, unit, config={"auth-tokens": secret.id}, secrets={secret})
    machine.paths.output.write_text("{}")  # what the daemon wrote
    machine.paths.quarantine.write_text("[]")
    theirs = ("var/lib/juju/", "etc/dwellir-harvester/config.d/", "var/lib/dwellir-harvester/charms/")
    before = {path: st for path, st in machine.files().items() if path.startswith(theirs)}
    assert len(before) == 3

    run("remove", out)

    assert machine.systemd.calls == [("service_stop", SERVICE), ("service_disable", SERVICE), ("daemon_reload",)]
    assert machine.systemd.state(SERVICE) is None  # unloaded
    assert machine.files() == before
    assert dropin.exists() and snapshot.exists()


def test_remove_before_install_is_harmless(run, machine, unit):
    run("remove", unit.state())

    assert machine.systemd.mutations() == []
    assert machine.files() == {}


def test_an_exclude_takes_effect_once_a_principal_provides_the_collector(run, machine, unit):
    relation = testing.SubordinateRelation("juju-info", remote_app_name="my-node")
    out = installed(run, machine, unit, config={"exclude-collectors": "peers"}, relations={relation})
    assert "exclude" not in yaml.safe_load(machine.paths.main_config.read_text())  # nothing provides it yet

    machine.add_principal("my-node", {"peers": "return {}", "height": "return {}"})
    out = run("relation_changed", out, relation)

    assert yaml.safe_load(machine.paths.main_config.read_text())["exclude"] == ["peers"]
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]
    assert out.unit_status.message.startswith("serving 4 collectors (from charms my-node)")

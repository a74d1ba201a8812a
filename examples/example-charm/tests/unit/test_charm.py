"""The charm's hooks in ops[testing]: what lands on the machine, what systemd is asked, the status."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys

import jsonschema
import pytest
import workload
import yaml
from ops import testing

from dwellir_harvester.charm.testing import FakeService
from dwellir_harvester.config import config_schema_path, load_settings

SERVICE = workload.SERVICE


def installed(run, machine, unit, **state_kwargs):
    """Run install (the service is running after it), and forget the systemd calls so far."""
    out = run("install", unit.state(**state_kwargs))
    assert machine.systemd.state(SERVICE) == "active"
    machine.systemd.calls.clear()
    return out


def token_gid():
    """A group the service user gets that differs from ours, when the tests may give files to it."""
    return 4242 if os.geteuid() == 0 else os.getgid()


# --- install ---------------------------------------------------------------------------------


def test_install_creates_the_user_writes_the_unit_and_starts_the_service(run, machine, unit, node, charm_root):
    out = run("install", unit.state(config={"rpc-url": node.url}))

    useradd = [call for call in machine.tool_calls() if call[0] == "useradd"]
    assert useradd == [
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            str(machine.paths.state_dir),
            "--shell",
            "/usr/sbin/nologin",
            "dwellir-harvester",
        ]
    ]
    text = machine.paths.unit_file.read_text()
    assert text == workload.render_unit(charm_root, machine.paths)
    assert "\nUser=dwellir-harvester\n" in text
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in text
    assert "\nExecStart=/usr/bin/python3 -m dwellir_harvester.cli serve\n" in text
    assert f"\nEnvironment=PYTHONPATH={charm_root / 'venv'}\n" in text
    assert stat.S_IMODE(machine.paths.unit_file.stat().st_mode) == 0o644

    assert machine.systemd.calls == [
        ("daemon_reload",),
        ("service_enable", SERVICE),
        ("service_running", SERVICE),
        ("service_start", SERVICE),
    ]
    assert machine.systemd.state(SERVICE) == "active"
    assert machine.systemd.services[SERVICE].enabled
    assert machine.systemd.warnings == []
    assert out.unit_status == testing.ActiveStatus(
        "harvesting host, juju-charm, unit-facts, polkadot on 127.0.0.1:18080"
    )
    assert out.workload_version == workload.runner_version()


def test_install_writes_a_config_the_runner_loads_with_the_charms_dropin(run, machine, unit, node, charm_root):
    run("install", unit.state(config={"rpc-url": node.url, "port": 19000, "interval": 60}))

    main = machine.paths.main_config
    schema = json.loads(config_schema_path().read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(main.read_text()))
    dropin = machine.paths.config_dir / "harvester-example.yaml"
    settings = load_settings(environ={"HARVESTER_CONFIG": str(main)})
    assert settings.files == [str(main), str(dropin)]
    assert (settings.host, settings.port, settings.interval) == ("127.0.0.1", 19000, 60)
    assert settings.collectors == ["host", "juju-charm", "unit-facts", "polkadot"]
    assert [p.path for p in settings.collector_paths] == [str(charm_root / "collectors")]
    assert settings.output == str(machine.paths.output)
    assert settings.auth_token_file is None
    options = settings.collector_options
    assert options["juju-charm"] == {"snapshot_dir": str(machine.paths.snapshot_dir)}
    assert options["polkadot"] == {"rpc_url": node.url}
    assert options["unit-facts"]["unit"] == "harvester-example/0"
    assert options["unit-facts"]["config"]["port"] == 19000
    assert stat.S_IMODE(main.stat().st_mode) == 0o644


def test_install_keeps_an_existing_service_user(run, machine, unit):
    machine.add_user("dwellir-harvester")
    run("install", unit.state())

    assert [call[0] for call in machine.tool_calls()] == ["getent"]


def test_a_user_that_cannot_be_created_blocks_and_nothing_is_started(run, machine, unit):
    machine.fail_useradd("useradd: cannot lock /etc/passwd; try again later.")

    out = run("install", unit.state())

    assert out.unit_status == testing.BlockedStatus(
        "cannot create the service user: useradd dwellir-harvester failed (exit 1): "
        "useradd: cannot lock /etc/passwd; try again later."
    )
    assert not machine.paths.unit_file.exists()
    assert machine.systemd.mutations() == []


def test_a_service_that_fails_to_start_blocks_the_unit(run, machine, unit):
    machine.systemd.services[SERVICE] = FakeService(masked=True)
    out = run("install", unit.state())

    assert out.unit_status == testing.BlockedStatus(
        "systemctl start dwellir-harvester failed: see `journalctl -u dwellir-harvester`"
    )


# --- idempotency -----------------------------------------------------------------------------


def test_a_second_config_changed_writes_nothing_and_reloads_nothing(run, machine, unit, node):
    out = installed(run, machine, unit, config={"rpc-url": node.url})
    before = machine.files()
    tools_before = len(machine.tool_calls())

    out = run("config_changed", out)
    out = run("config_changed", out)

    assert machine.files() == before  # same inodes, same mtimes: nothing rewritten
    assert machine.systemd.calls == [("service_running", SERVICE)] * 2  # asked, never told
    assert [c[0] for c in machine.tool_calls()[tools_before:]] == ["getent", "getent"]
    assert out.unit_status.name == "active"


@pytest.mark.parametrize("event", ["start", "upgrade_charm", "leader_elected", "update_status"])
def test_other_hooks_change_nothing_that_did_not_change(run, machine, unit, event):
    out = installed(run, machine, unit)
    before = machine.files()

    run(event, out)

    if event == "upgrade_charm":  # the venv the daemon runs from was replaced: restart it
        assert machine.systemd.mutations() == [("service_restart", SERVICE)]
    else:
        assert machine.systemd.mutations() == []
    assert machine.files() == before


# --- what a change does to the service -------------------------------------------------------


def test_a_changed_interval_rewrites_the_config_and_reloads(run, machine, unit):
    out = installed(run, machine, unit)
    run("config_changed", dataclasses.replace(out, config={"interval": 30}))

    assert yaml.safe_load(machine.paths.main_config.read_text())["interval"] == 30
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]


@pytest.mark.parametrize(("option", "value"), [("port", 18081), ("bind-address", "0.0.0.0")])
def test_a_changed_port_or_address_restarts_the_daemon(run, machine, unit, option, value):
    installed(run, machine, unit)
    out = run("config_changed", unit.state(config={option: value}))

    assert machine.systemd.mutations() == [("service_restart", SERVICE)]
    host, port = ("0.0.0.0", 18080) if option == "bind-address" else ("127.0.0.1", 18081)
    assert out.unit_status.message.endswith(f" on {host}:{port}")


def test_a_changed_rpc_url_rewrites_only_the_dropin_and_reloads_once(run, machine, unit, node):
    installed(run, machine, unit, config={"rpc-url": node.url})
    before = machine.files()

    run("config_changed", unit.state(config={"rpc-url": "http://10.0.0.7:9944"}))

    changed = {path for path, st in machine.files().items() if before.get(path) != st}
    assert changed == {
        "etc/dwellir-harvester/config.d/harvester-example.yaml",
        "var/lib/dwellir-harvester/charms/harvester-example.json",
    }
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]  # by the Harvester


def test_a_stopped_service_is_started_again(run, machine, unit):
    out = installed(run, machine, unit)
    machine.systemd.services[SERVICE].state = "failed"

    status = run("update_status", out).unit_status
    assert status == testing.BlockedStatus("dwellir-harvester is not running: see `journalctl -u dwellir-harvester`")

    out = run("config_changed", out)
    assert machine.systemd.mutations() == [("service_start", SERVICE)]
    assert out.unit_status.name == "active"


# --- tokens from the Juju secret -------------------------------------------------------------

TOKENS = ("tok-5f0c1e9a7b", "tok-9d2b4a6c8e")


def test_the_secret_becomes_the_token_file_and_is_never_shown(run, machine, unit, ctx, node, charm_root):
    machine.add_user("dwellir-harvester", gid=token_gid())
    secret = testing.Secret({"tokens": " ".join(TOKENS)})
    state = unit.state(config={"auth-tokens": secret.id, "rpc-url": node.url}, secrets={secret})

    out = run("install", state)
    out = run("config_changed", out)

    path = machine.paths.token_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_gid == token_gid()
    assert yaml.safe_load(path.read_text()) == [
        {"token": TOKENS[0], "label": "juju-secret-1", "enabled": True},
        {"token": TOKENS[1], "label": "juju-secret-2", "enabled": True},
    ]
    assert yaml.safe_load(machine.paths.main_config.read_text())["auth_token_file"] == str(path)
    assert out.unit_status.name == "active"

    ctx.run(ctx.on.action("run-collectors"), out)
    output = ctx.action_results["output"]
    assert (
        json.loads(output)["collectors"]["juju-charm"]["data"]["applications"]["harvester-example"]["config"][
            "auth-tokens"
        ]
        == "<redacted>"
    )

    # The tokens are in the token file and nowhere else: not in the logs, the drop-in, the
    # snapshot, the main config or the action's results.
    logs = "\n".join(entry.message for entry in ctx.juju_log)
    others = [p for p in machine.root.rglob("*") if p.is_file() and p != path]
    assert others
    for token in TOKENS:
        assert token not in logs
        assert token not in output
        for other in others:
            assert token not in other.read_text(), other

    # And the daemon accepts all of it: config, drop-in, token file, plugin dir, output dir.
    check = subprocess.run(
        [sys.executable, "-m", "dwellir_harvester.cli", "serve", "--check-config"],
        env={**os.environ, "HARVESTER_CONFIG": str(machine.paths.main_config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert all(token not in check.stdout + check.stderr for token in TOKENS)


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
    assert TOKENS[0] in machine.paths.token_file.read_text()

    updated = dataclasses.replace(secret, latest_content={"tokens": TOKENS[1]})  # juju update-secret
    ctx.run(ctx.on.secret_changed(updated), dataclasses.replace(out, secrets={updated}))

    assert TOKENS[1] in machine.paths.token_file.read_text()
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]


def test_unsetting_the_secret_removes_the_token_file_and_reloads(run, machine, unit):
    secret = testing.Secret({"tokens": TOKENS[0]})
    installed(run, machine, unit, config={"auth-tokens": secret.id}, secrets={secret})

    run("config_changed", unit.state())

    assert not machine.paths.token_file.exists()
    assert "auth_token_file" not in yaml.safe_load(machine.paths.main_config.read_text())
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]


def test_a_secret_that_is_missing_or_not_granted_blocks_and_writes_nothing(run, machine, unit):
    missing = "secret:" + "a" * 20
    out = run("install", unit.state(config={"auth-tokens": missing}))

    assert out.unit_status == testing.BlockedStatus(
        f"the auth-tokens secret {missing} does not exist or is not granted to harvester-example"
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
def test_unusable_tokens_block_without_showing_them(run, machine, unit, ctx, content, reason):
    secret = testing.Secret(content)
    out = run("install", unit.state(config={"auth-tokens": secret.id}, secrets={secret}))

    assert out.unit_status.name == "blocked"
    assert reason in out.unit_status.message
    assert "s3cr3t-value" not in out.unit_status.message
    assert all("s3cr3t-value" not in entry.message for entry in ctx.juju_log)
    assert not machine.paths.token_file.exists()


# --- bad config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"port": 0}, "port must be between 1 and 65535, not 0"),
        ({"port": 70000}, "port must be between 1 and 65535, not 70000"),
        ({"bind-address": "not an address"}, "bind-address 'not an address' is not an IP address or host name"),
        ({"interval": 0}, "interval must be a whole number of seconds, at least 1, not 0"),
        ({"collectors": "host, nope"}, "unknown collector 'nope' in collectors (available: "),
    ],
)
def test_bad_config_blocks_with_the_reason_and_is_not_applied(run, machine, unit, config, message):
    installed(run, machine, unit)
    before = machine.files()

    out = run("config_changed", unit.state(config=config))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(message)
    # The daemon keeps its last good config, and the drop-in its last good collectors and options;
    # only the snapshot of the charm's Juju context follows what Juju has configured.
    changed = {path for path, st in machine.files().items() if before.get(path) != st}
    assert changed == {"var/lib/dwellir-harvester/charms/harvester-example.json"}
    assert machine.systemd.mutations() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://admin:hunter2@127.0.0.1:9944", "rpc-url must not hold credentials"),
        ("ftp://127.0.0.1/", "rpc-url must be an http:// or https:// URL with a host, not 'ftp://127.0.0.1/'"),
        ("http://127.0.0.1:99999", "rpc-url 'http://127.0.0.1:99999' is not a valid URL"),
    ],
)
def test_a_bad_rpc_url_blocks_and_withdraws_the_chain_collector(run, machine, unit, url, message):
    out = run("install", unit.state(config={"rpc-url": url}))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(message)
    dropin = machine.sandbox.read_dropin(unit.APP)
    assert dropin["collectors"] == ["unit-facts"]
    assert "polkadot" not in dropin.get("collector_options", {})
    written = [p for p in machine.root.rglob("*") if p.is_file() and p.parent != machine.paths.snapshot_dir]
    assert all("hunter2" not in p.read_text() for p in written)


def test_the_charms_paths_are_where_the_helpers_sandbox_looks(machine):
    """One layout: the charm's own root holds the Harvester's files where Sandbox puts them."""
    assert machine.sandbox.config_dir == machine.paths.config_dir
    assert machine.sandbox.snapshot_dir == machine.paths.snapshot_dir
    assert machine.sandbox.results_dir == machine.paths.results_dir


def test_credentials_in_a_url_option_never_reach_the_snapshot(run, machine, unit):
    run("install", unit.state(config={"rpc-url": "http://admin:hunter2@127.0.0.1:9944"}))

    assert "hunter2" not in (machine.paths.snapshot_dir / "harvester-example.json").read_text()


def test_an_empty_rpc_url_contributes_no_chain_collector(run, machine, unit):
    out = run("install", unit.state(config={"rpc-url": ""}))

    assert out.unit_status == testing.ActiveStatus("harvesting host, juju-charm, unit-facts on 127.0.0.1:18080")


def test_the_collectors_option_adds_the_runners_collectors(run, machine, unit):
    out = run("install", unit.state(config={"collectors": "juju,null unit-facts", "rpc-url": ""}))

    assert yaml.safe_load(machine.paths.main_config.read_text())["collectors"] == ["host", "juju", "null"]
    assert out.unit_status == testing.ActiveStatus("harvesting host, juju, null, unit-facts on 127.0.0.1:18080")


# --- remove ----------------------------------------------------------------------------------


def test_remove_stops_disables_and_cleans_up(run, machine, unit):
    secret = testing.Secret({"tokens": TOKENS[0]})
    out = installed(run, machine, unit, config={"auth-tokens": secret.id}, secrets={secret})

    run("remove", out)

    assert machine.systemd.calls == [("service_stop", SERVICE), ("service_disable", SERVICE), ("daemon_reload",)]
    assert machine.systemd.state(SERVICE) is None  # unloaded
    assert machine.files() == {}


def test_remove_before_install_is_harmless(run, machine, unit):
    run("remove", unit.state())

    assert machine.systemd.mutations() == []
    assert machine.files() == {}


# --- leader-elected --------------------------------------------------------------------------


def test_leader_elected_refreshes_the_snapshot_only(run, machine, unit):
    out = installed(run, machine, unit)
    before = machine.files()

    run("leader_elected", dataclasses.replace(out, leader=True))

    changed = {path for path, st in machine.files().items() if before.get(path) != st}
    assert changed == {"var/lib/dwellir-harvester/charms/harvester-example.json"}
    snapshot = machine.sandbox.read_snapshot(unit.APP)
    assert snapshot["topology"]["leader"] is True
    assert machine.systemd.mutations() == []

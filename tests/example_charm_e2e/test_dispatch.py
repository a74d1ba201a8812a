"""The example charm as Juju runs it: ``dispatch`` in a packed layout, the hook tools, systemctl; no daemon."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest
import yaml

from dwellir_harvester.config import load_settings
from dwellir_harvester.lib import validate_output

DROPIN = "/etc/dwellir-harvester/config.d/harvester-example.yaml"
SNAPSHOT = "/var/lib/dwellir-harvester/charms/harvester-example.json"
IS_ACTIVE = ["systemctl", "--quiet", "is-active", "dwellir-harvester"]

HUGE = '''
"""A test-only collector whose data is too large for action results."""
from dwellir_harvester.lib import GenericCollector


class HugeCollector(GenericCollector):
    NAME = "huge"
    VERSION = "1.0.0"

    def collect(self):
        return {"blob": "x" * (200 * 1024)}
'''

# A stand-in for the subordinate's daemon: a process that stays up and counts nothing but SIGHUPs.
SUBORDINATE_UNIT = """[Unit]
Description=stand-in for the dwellir-harvester subordinate's daemon

[Service]
ExecStart=/usr/bin/python3 -c "import signal, time; signal.signal(signal.SIGHUP, lambda *a: None); time.sleep(600)"
ExecReload=/bin/kill -HUP $MAINPID

[Install]
WantedBy=multi-user.target
"""


def test_a_unit_from_deploy_to_remove(machine, unit, node):
    unit.config(rpc_url=node.url)

    unit.deploy()  # install, leader-elected, config-changed, start

    assert unit.status() == ("active", "ships unit-facts, polkadot to the harvester")
    dropin = yaml.safe_load(machine.path(DROPIN).read_text())
    assert dropin["collectors"] == ["unit-facts", "polkadot"]
    assert dropin["collector_paths"] == [str(unit.charm / "collectors")]
    assert dropin["collector_options"]["polkadot"] == {"rpc_url": node.url}
    assert dropin["collector_options"]["unit-facts"]["unit"] == "harvester-example/0"
    assert str(unit.charm / "venv") in dropin["python_path"]  # the daemon's worker imports from this venv
    assert stat.S_IMODE(machine.path(DROPIN).stat().st_mode) == 0o644
    snapshot = json.loads(machine.path(SNAPSHOT).read_text())
    assert snapshot["topology"] == {
        "model": "prod",
        "model_uuid": "8ad3c5c2-3a0c-4c47-9f0a-7f4a6c1d2e3f",
        "application": "harvester-example",
        "unit": "harvester-example/0",
        "charm": "harvester-example",
        "leader": True,
    }
    assert set(machine.files()) == {DROPIN.lstrip("/"), SNAPSHOT.lstrip("/")}

    # What the subordinate's daemon will read: its main config plus this drop-in.
    main = machine.path("/etc/dwellir-harvester/config.yaml")
    main.write_text("collectors: [host]\n")
    settings = load_settings(environ={"HARVESTER_CONFIG": str(main)})
    assert settings.collectors == ["host", "unit-facts", "polkadot"]
    main.unlink()

    # Nothing changed: nothing is written, the service is only asked whether it runs.
    files, calls = machine.files(), len(unit.calls())
    unit.hook("config-changed")
    assert machine.files() == files
    assert [c for c in unit.calls()[calls:] if c[0] == "systemctl"] == []

    unit.config(rpc_url="http://127.0.0.1:9")
    unit.hook("config-changed")
    assert yaml.safe_load(machine.path(DROPIN).read_text())["collector_options"]["polkadot"] == {
        "rpc_url": "http://127.0.0.1:9"
    }
    unit.config(rpc_url=node.url)
    unit.hook("config-changed")

    # juju run harvester-example/0 run-collectors --format json | jq -r '."harvester-example/0".results.output'
    action = unit.action("run-collectors")
    assert action.status == "completed", action.message
    result = json.loads(action.as_juju_prints_it()["harvester-example/0"]["results"]["output"])
    validate_output(result)
    assert list(result["collectors"]) == ["host", "unit-facts", "polkadot", "juju-charm"]
    assert result["host"] == result["collectors"]["host"]["data"]
    assert result["collectors"]["polkadot"]["data"]["health"]["peers"] == 42
    assert action.results["status"] == "success"

    unit.hook("stop")
    unit.hook("remove")
    assert machine.files() == {}

    # The charm runs no daemon: it never starts, stops, enables or reloads anything, and needs no user.
    # Asked once per drop-in change (install, two config changes, remove) whether the subordinate's runs.
    assert [c for c in unit.calls() if c[0] == "systemctl"] == [IS_ACTIVE] * 4
    assert machine.state()["users"] == {}
    assert machine.daemon_pids() == []
    assert unit.tools_called() == [
        "action-get",
        "action-log",
        "action-set",
        "config-get",
        "is-leader",
        "juju-log",
        "status-set",
        "systemctl",
    ]
    assert machine.state()["longest_arg"] < 131072


def test_a_changed_dropin_reloads_the_subordinates_running_service(machine, unit):
    service = machine.path("/etc/systemd/system/dwellir-harvester.service")
    service.parent.mkdir(parents=True)
    service.write_text(SUBORDINATE_UNIT)
    start = subprocess.run(
        [str(unit.bin / "systemctl"), "start", "dwellir-harvester"], capture_output=True, text=True, check=False
    )
    assert start.returncode == 0, start.stderr
    unit.deploy()

    unit.config(rpc_url="")
    unit.hook("config-changed")
    unit.hook("config-changed")  # nothing changed: no reload

    known = machine.state()["systemd"]["units"]["dwellir-harvester.service"]
    assert known["state"] == "active"
    assert known["reloads"] == 2  # install wrote the drop-in, the first config-changed rewrote it
    verbs = [c[1:] for c in unit.calls() if c[0] == "systemctl"]
    assert ["start", "dwellir-harvester"] not in verbs[1:]  # the charm itself never starts it
    assert verbs.count(["reload", "dwellir-harvester"]) == 2


def test_a_bad_rpc_url_blocks_and_keeps_the_last_good_dropin(machine, unit, node):
    unit.config(rpc_url=node.url)
    unit.deploy()
    before = machine.path(DROPIN).read_bytes()

    unit.config(rpc_url="http://admin:hunter2@127.0.0.1:9944")
    unit.hook("config-changed")

    status, message = unit.status()
    assert status == "blocked"
    assert message.startswith("rpc-url must not hold credentials")
    assert machine.path(DROPIN).read_bytes() == before
    said = json.dumps(unit.logs()) + json.dumps(unit.juju()["status_history"])
    assert "hunter2" not in said
    assert "hunter2" not in machine.path(SNAPSHOT).read_text()


def test_bad_params_fail_the_action_with_the_reason(unit):
    action = unit.action(collectors="host nope")
    assert action.status == "failed"
    assert action.message.startswith("unknown collector 'nope' (available: ")
    assert "unit-facts" in action.message and "polkadot" in action.message
    assert "output" not in action.results

    action = unit.action(timeout=0)
    assert (action.status, action.message) == (
        "failed",
        "timeout must be greater than 0 and at most 3600 seconds, not 0",
    )

    with pytest.raises(unit.ParamsRefused, match="Additional properties are not allowed"):  # juju run refuses
        unit.action(colectors="host")


def test_a_document_too_large_for_action_results_reaches_the_user_through_a_file(machine, unit):
    plugin = unit.charm / "collectors" / "huge.py"  # test-only: the shipped charm has two collectors
    plugin.write_text(HUGE)
    plugin.chmod(0o644)

    action = unit.action(collectors="huge host")

    assert action.status == "completed", action.message
    assert "output" not in action.results
    path = action.results["output-file"]
    assert path.startswith(str(machine.path("/var/lib/dwellir-harvester/action-results/")))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    validate_output(document)
    assert len(document["collectors"]["huge"]["data"]["blob"]) == 200 * 1024
    assert machine.state()["longest_arg"] < 131072  # the charm never handed action-set an argument too long


def test_the_layout_is_what_charmcraft_packs(unit):
    """The dispatch script is charmcraft's own (for the kit's entrypoint)."""
    from charmcraft import const

    expected = const.DISPATCH_CONTENT.format(entrypoint_relative_path="src/on_test_machine.py")
    assert (unit.charm / "dispatch").read_text() == expected
    assert os.access(unit.charm / "src" / "on_test_machine.py", os.X_OK)
    assert (unit.charm / "src" / "charm.py").read_text().startswith("#!/usr/bin/env python3\n")
    assert sorted(p.name for p in unit.charm.iterdir()) == [
        "README.md",
        "actions.yaml",
        "collectors",
        "config.yaml",
        "dispatch",
        "manifest.yaml",
        "metadata.yaml",
        "requirements.txt",
        "src",
        "venv",
    ]

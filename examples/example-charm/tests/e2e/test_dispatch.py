"""The charm as Juju runs it: ``dispatch`` in a packed layout, hook tools, systemctl, a real daemon."""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import jsonschema
import pytest
import yaml

from dwellir_harvester.config import config_schema_path, load_settings
from dwellir_harvester.daemon import systemd_unit
from dwellir_harvester.lib import validate_output

SERVICE_UNIT = "/etc/systemd/system/dwellir-harvester.service"
MAIN_CONFIG = "/etc/dwellir-harvester/config.yaml"
TOKEN_FILE = "/etc/dwellir-harvester/tokens.yaml"
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def wait_for_document(url: str, token: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = get(f"{url}/metadata", token)
        except OSError:
            status, body = 0, b""
        if status == 200:
            result: dict[str, Any] = json.loads(body)
            return result
        assert time.monotonic() < deadline, f"the daemon did not serve a document (last answer: {status})"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def unit_keys(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


def test_a_unit_from_deploy_to_remove(unit, node):
    port = free_port()
    token = secrets.token_urlsafe(24)
    unit.config(port=port, rpc_url=node.url, auth_tokens=unit.add_secret({"tokens": token}))

    unit.deploy()  # install, leader-elected, config-changed, start

    state = unit.state()
    harvesting = f"harvesting host, juju-charm, unit-facts, polkadot on 127.0.0.1:{port}"
    assert state["status"]["unit"] == ["active", harvesting]
    assert state["users"]["dwellir-harvester"]["argv"][:2] == ["--system", "--user-group"]
    assert state["workload_version"]

    # The unit: rendered by the runner, as the runner expects it, running the runner from the venv.
    text = unit.path(SERVICE_UNIT).read_text()
    environment = {"PYTHONPATH": f"{unit.charm}/venv", "HARVESTER_CONFIG": str(unit.path(MAIN_CONFIG))}
    assert text == systemd_unit(["/usr/bin/python3", "-m", "dwellir_harvester.cli"], "dwellir-harvester", environment)
    keys = unit_keys(text)
    assert keys["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert keys["User"] == ["dwellir-harvester"]
    assert keys["ExecStart"] == ["/usr/bin/python3 -m dwellir_harvester.cli serve"]
    assert state["systemd"]["units"]["dwellir-harvester.service"]["enabled"] is True
    assert state["systemd"]["warnings"] == []

    # The main config: valid for the runner's schema, and what the runner loads with the drop-in.
    main = unit.path(MAIN_CONFIG)
    schema = json.loads(config_schema_path().read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(main.read_text()))
    settings = load_settings(environ={"HARVESTER_CONFIG": str(main)})
    assert (settings.host, settings.port, settings.interval) == ("127.0.0.1", port, 300)
    assert settings.collectors == ["host", "juju-charm", "unit-facts", "polkadot"]
    assert settings.auth_token_file == str(unit.path(TOKEN_FILE))
    assert stat.S_IMODE(unit.path(TOKEN_FILE).stat().st_mode) == 0o640

    # The daemon the charm started serves the document, to holders of the secret's token only.
    url = f"http://127.0.0.1:{port}"
    document = wait_for_document(url, token)
    validate_output(document)
    assert set(document["collectors"]) == {"host", "juju-charm", "unit-facts", "polkadot"}
    assert document["collectors"]["polkadot"]["meta"]["status"] == "success"
    assert "harvester-example" in document["collectors"]["juju-charm"]["data"]["applications"]
    assert get(f"{url}/metadata")[0] == 401
    pid = unit.daemon_pids()[-1]

    # Nothing changed: nothing is written, the service is only asked whether it runs.
    files, calls = unit.files(), len(unit.state()["calls"])
    unit.hook("config-changed")
    assert unit.files() == files
    new_calls = unit.state()["calls"][calls:]
    assert [c for c in new_calls if c[0] == "systemctl"] == [IS_ACTIVE]

    # A change the daemon can take on a reload: one SIGHUP, same process, still serving.
    unit.config(interval=120)
    unit.hook("config-changed")
    known = unit.state()["systemd"]["units"]["dwellir-harvester.service"]
    assert (known["pid"], known.get("reloads")) == (pid, 1)
    assert get(f"{url}/healthz")[0] == 200

    # juju run harvester-example/0 run-collectors --format json | jq -r '."harvester-example/0".results.output'
    action = unit.run_action()
    assert action.status == "completed", action.message
    printed = action.as_juju_prints_it()
    result = json.loads(printed["harvester-example/0"]["results"]["output"])
    validate_output(result)
    assert list(result["collectors"]) == ["host", "unit-facts", "polkadot", "juju-charm"]
    assert result["host"] == result["collectors"]["host"]["data"]
    assert action.results["status"] == "success"

    # The token is in the token file and nowhere else the charm wrote or said.
    said = json.dumps(unit.logs()) + json.dumps(unit.state()["status_history"]) + json.dumps(action.results)
    assert token not in said
    for path in unit.root.rglob("*"):
        if path.is_file() and path != unit.path(TOKEN_FILE):
            assert token.encode() not in path.read_bytes(), path

    # stop, remove: the daemon is gone, and so is every file the charm and the Harvester wrote.
    unit.hook("stop")
    unit.hook("remove")
    assert not alive(pid)
    assert "dwellir-harvester.service" not in unit.state()["systemd"]["units"]
    left = sorted(p for p in unit.files() if not p.startswith(("var/log/", "var/lib/dwellir-harvester/harvested")))
    assert left == []

    # What ops really calls in these hooks and the action (no relation tools: no relations).
    assert unit.tools_called() == [
        "action-get",
        "action-log",
        "action-set",
        "application-version-set",
        "config-get",
        "getent",
        "is-leader",
        "juju-log",
        "secret-get",
        "status-set",
        "systemctl",
        "useradd",
    ]
    assert unit.state()["longest_arg"] < 131072


def test_bad_params_fail_the_action_with_the_reason(unit):
    action = unit.run_action(collectors="host nope")
    assert action.status == "failed"
    assert action.message.startswith("unknown collector 'nope' (available: ")
    assert "unit-facts" in action.message and "polkadot" in action.message
    assert "output" not in action.results

    action = unit.run_action(timeout=0)
    assert (action.status, action.message) == (
        "failed",
        "timeout must be greater than 0 and at most 3600 seconds, not 0",
    )

    with pytest.raises(unit.ParamsRefused, match="Additional properties are not allowed"):  # juju run refuses
        unit.run_action(colectors="host")


def test_a_document_too_large_for_action_results_reaches_the_user_through_a_file(unit):
    plugin = unit.charm / "collectors" / "huge.py"  # test-only: the shipped charm has two collectors
    plugin.write_text(HUGE)
    plugin.chmod(0o644)

    action = unit.run_action(collectors="huge host")

    assert action.status == "completed", action.message
    assert "output" not in action.results
    path = action.results["output-file"]
    assert path.startswith(str(unit.path("/var/lib/dwellir-harvester/action-results/")))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    validate_output(document)
    assert len(document["collectors"]["huge"]["data"]["blob"]) == 200 * 1024
    assert unit.state()["longest_arg"] < 131072  # the charm never handed action-set an argument too long


def tool(unit, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(unit.bin / argv[0]), *argv[1:]], capture_output=True, text=True, check=False)


def test_the_hook_tools_keep_juju_and_the_kernels_rules(unit):
    # action-set gets one "key=value" argument per result: Linux refuses one over 128 KiB.
    with pytest.raises(OSError) as refused:
        subprocess.run([str(unit.bin / "action-set"), "output=" + "x" * (128 * 1024)], check=False)
    assert refused.value.errno == errno.E2BIG

    assert tool(unit, "action-set", "status=ok").stderr == "ERROR action-set can only be used in an action\n"
    unit._update(action={"name": "run-collectors", "params": {}, "results": {}, "log": [], "failed": None})
    assert "must start and end with lowercase alphanumeric" in tool(unit, "action-set", "Output=1").stderr
    assert "must start and end with lowercase alphanumeric" in tool(unit, "action-set", "a.-b=1").stderr
    assert tool(unit, "action-set", "stdout=x").stderr == 'ERROR cannot set reserved action key "stdout"\n'
    assert tool(unit, "action-set", "out.put-file=1", "status=ok").returncode == 0
    assert unit.state()["action"]["results"] == {"out.put-file": "1", "status": "ok"}
    assert tool(unit, "status-set", "--application=False", "error", "--", "x").returncode != 0


def test_the_systemctl_stand_in_keeps_systemctls_rules(unit):
    unknown = tool(unit, "systemctl", "start", "dwellir-harvester")
    assert (unknown.returncode, unknown.stderr) == (
        5,
        "Failed to start dwellir-harvester.service: Unit dwellir-harvester.service not found.\n",
    )
    assert tool(unit, "systemctl", "--quiet", "is-active", "dwellir-harvester").returncode == 3

    path = unit.path(SERVICE_UNIT)
    path.parent.mkdir(parents=True)
    path.write_text("[Service]\nExecStart=/bin/true\nExecReload=/bin/kill -HUP $MAINPID\n")
    stopped = tool(unit, "systemctl", "reload", "dwellir-harvester")
    assert (stopped.returncode, stopped.stderr) == (1, "dwellir-harvester.service is not active, cannot reload.\n")
    no_install = tool(unit, "systemctl", "enable", "dwellir-harvester")
    assert no_install.returncode == 1
    assert "no installation config" in no_install.stderr


def test_a_secret_not_granted_blocks_until_it_is(unit):
    uri = unit.add_secret({"tokens": "tok-1 tok-2"}, granted=False)
    unit.config(auth_tokens=uri, port=free_port(), rpc_url="")
    for name in ("install", "config-changed"):
        unit.hook(name)

    status, message = unit.state()["status"]["unit"]
    assert status == "blocked"
    assert message == (
        f"cannot read the auth-tokens secret {uri} (ERROR permission denied); grant it to harvester-example"
    )
    assert not unit.path(MAIN_CONFIG).exists()
    assert not unit.path(TOKEN_FILE).exists()
    assert unit.daemon_pids() == []

    state = unit.state()  # juju grant-secret harvest-tokens harvester-example
    state["secrets"][uri]["granted"] = True
    unit._update(secrets=state["secrets"])
    unit.hook("config-changed")

    assert unit.state()["status"]["unit"][0] == "active"
    assert yaml.safe_load(unit.path(TOKEN_FILE).read_text())[1]["token"] == "tok-2"
    assert len(unit.daemon_pids()) == 1


def test_the_layout_is_what_charmcraft_packs(unit):
    """The dispatch script is charmcraft's own (for the tests' entrypoint); skipped without charmcraft."""
    const = pytest.importorskip("charmcraft.const")
    expected = const.DISPATCH_CONTENT.format(entrypoint_relative_path="src/on_test_machine.py")
    assert (unit.charm / "dispatch").read_text() == expected
    assert os.access(unit.charm / "src" / "on_test_machine.py", os.X_OK)
    assert os.access(unit.charm / "src" / "charm.py", os.X_OK)
    assert (unit.charm / "src" / "charm.py").read_text().startswith("#!/usr/bin/env python3\n")

"""The whole machine, as Juju runs it: the example node charm and this subordinate, the daemon really running.

Both charms go through ``dispatch`` on one machine of the repository's kit (``tests/juju``): the
example charm writes its drop-in, the subordinate writes the main config, the token file and the
unit, and the kit's ``systemctl`` starts the unit's ``ExecStart`` (the runner from the
subordinate's ``venv/``, under the machine's ``python3``). Every assertion on what is served reads
``/metadata`` from that daemon over HTTP. See ``conftest.py`` for the layout.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import yaml

from tests.juju import hooktools

SERVICE = "dwellir-harvester.service"
DROPIN = "/etc/dwellir-harvester/config.d/harvester-example.yaml"
EXAMPLES = {"unit-facts", "polkadot", "venv-probe"}

OTHER_CHARMCRAFT = """\
name: other-node
type: charm
summary: A second principal on the machine, with one collector.
description: A second principal on the machine, with one collector.
base: ubuntu@24.04
platforms:
  amd64:
"""
OTHER_CHARM = '''#!/usr/bin/env python3
"""A principal node charm of the smallest kind: its collectors and one Harvester."""

from typing import Any, ClassVar

import ops

from dwellir_harvester.charm import Harvester


class OtherNodeCharm(ops.CharmBase):
    harvester_args: ClassVar[dict[str, Any]] = {}

    def __init__(self, framework):
        super().__init__(framework)
        self.harvester = Harvester(self, "collectors", action=None, **self.harvester_args)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event):
        event.add_status(ops.ActiveStatus("ships other-facts"))
        event.add_status(self.harvester.status)


if __name__ == "__main__":
    ops.main(OtherNodeCharm)
'''
OTHER_COLLECTOR = """from dwellir_harvester.lib import GenericCollector


class OtherFactsCollector(GenericCollector):
    NAME = "other-facts"
    VERSION = "1.0.0"

    def collect(self):
        return {"node": "other"}
"""
BAD_DROPIN = "# A drop-in someone wrote by hand.\ncollectors: [unclosed\n"


def statuses(document: dict[str, Any]) -> dict[str, str]:
    """Each collector's status in a harvest document."""
    return {name: entry["meta"]["status"] for name, entry in document["collectors"].items()}


def world_readable_files_holding(root: Path, text: str) -> list[str]:
    """The files under ``root`` that every user may read and that hold ``text`` (symlinks not followed)."""
    found = []
    needle = text.encode()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH:
                with open(path, "rb") as f:
                    if needle in f.read():
                        found.append(os.path.relpath(path, root))
    return found


def daemon_process(pid: int) -> tuple[list[str], dict[str, str]]:
    """The daemon's command line and environment, as /proc shows them."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [arg.decode() for arg in f.read().split(b"\0") if arg]
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = dict(item.decode().partition("=")[::2] for item in f.read().split(b"\0") if item)
    return argv, environ


def test_the_example_charms_collectors_from_deploy_to_remove(whole):
    machine = whole.machine
    node = whole.deploy_node()
    harvester = whole.deploy_harvester()

    assert harvester.status() == (
        "active",
        f"serving 6 collectors (from charms harvester-example) on 127.0.0.1:{whole.port}",
    )
    assert node.status() == ("active", "ships unit-facts, polkadot, venv-probe to the harvester")
    [pid] = machine.daemon_pids()

    # 1. /metadata from the running daemon: the token is required, and it holds both charms' collectors.
    assert whole.get(token=None)[0] == 401
    assert whole.get(token="tok-not-the-one")[0] == 401
    assert whole.get("/healthz", token=None)[0] == 200
    document = whole.wait_for("every collector ran", lambda d: set(d["collectors"]) >= EXAMPLES)
    assert statuses(document) == {
        "host": "success",
        "juju": "success",
        "juju-charm": "success",
        "unit-facts": "success",
        "polkadot": "success",
        "venv-probe": "success",
    }, whole.journal()
    collectors = document["collectors"]
    assert document["host"] == collectors["host"]["data"]
    assert collectors["polkadot"]["data"]["health"]["peers"] == 42
    assert collectors["polkadot"]["data"]["blockchain"]["blockchain_network_name"] == "Polkadot"
    assert collectors["unit-facts"]["data"]["unit"] == "harvester-example/0"
    # The juju collector looked at this machine's agents dir, not the host's (no agent.conf there).
    assert str(machine.path("/var/lib/juju/agents")) in collectors["juju"]["data"]["note"]
    assert collectors["unit-facts"]["data"]["config"] == {"rpc-url": whole.polkadot.url}
    topology = collectors["juju-charm"]["data"]["applications"]["harvester-example"]["topology"]
    assert (topology["unit"], topology["leader"]) == ("harvester-example/0", True)
    for name in EXAMPLES:
        assert collectors[name]["meta"]["source"].startswith(f"path:{node.charm / 'collectors'}/"), name

    # 2. The example's collectors ran in a worker under the example charm's own venv: the daemon runs
    # from the subordinate's venv, which lacks the package the probe imported.
    argv, environ = daemon_process(pid)
    assert argv[1:] == ["-S", "-m", "dwellir_harvester.cli", "serve"]  # the machine's python3: no site-packages
    assert environ["PYTHONPATH"] == str(harvester.charm / "venv")
    assert not (harvester.charm / "venv" / "only_in_example_venv").exists()
    probe = collectors["venv-probe"]["data"]
    assert probe["module"] == str(node.charm / "venv" / "only_in_example_venv" / "__init__.py")
    assert probe["marker"] == "only in the example charm's venv"
    dropin = yaml.safe_load(machine.path(DROPIN).read_text())
    assert probe["python"] == dropin["python"]
    assert str(node.charm / "venv") in dropin["python_path"]

    # 4. run-collectors returns what the daemon harvests; show-config the effective config, no token.
    action = harvester.action("run-collectors")
    assert action.status == "completed", action.message
    assert action.results["status"] == "success"
    assert statuses(json.loads(action.results["output"])) == statuses(document)
    shown = harvester.action("show-config")
    assert shown.status == "completed", shown.message
    config = json.loads(shown.results["config"])
    assert (config["port"], config["interval"], config["auth_tokens"], config["problems"]) == (whole.port, 1, 1, [])
    assert config["selected"] == list(statuses(document))

    # 3. Changing the example charm's config changes the next document: the Harvester reloads the daemon.
    before = document["harvester"]["collection_time"]
    node.config(rpc_url="")
    node.hook("config-changed")
    document = whole.wait_for(
        "polkadot is gone and unit-facts reports the new rpc-url",
        lambda d: (
            "polkadot" not in d["collectors"] and d["collectors"]["unit-facts"]["data"]["config"]["rpc-url"] == ""
        ),
        after=before,
    )
    assert statuses(document) == dict.fromkeys(["host", "juju", "juju-charm", "unit-facts", "venv-probe"], "success")
    node.config(rpc_url=whole.polkadot.url)
    node.hook("config-changed")
    document = whole.wait_for(
        "polkadot is back",
        lambda d: d["collectors"].get("polkadot", {}).get("meta", {}).get("status") == "success",
        after=document["harvester"]["collection_time"],
    )
    known = machine.state()["systemd"]["units"][SERVICE]
    assert (known["pid"], known["reloads"]) == (pid, 2)  # reloaded twice, never restarted

    # The token is nowhere but in the 0640 token file.
    said = json.dumps([action.results, action.log, shown.results, shown.log, node.logs(), harvester.logs()])
    said += json.dumps([node.juju()["status_history"], harvester.juju()["status_history"]])
    assert whole.token not in said
    assert whole.token not in whole.journal()
    assert world_readable_files_holding(machine.root, whole.token) == []
    assert stat.S_IMODE(machine.path("/etc/dwellir-harvester/tokens.yaml").stat().st_mode) == 0o640

    # 6. Remove: the subordinate goes first and stops the daemon; nothing of either charm is left.
    node.remove()
    assert machine.daemon_pids() == [pid]  # the one process systemctl ever started ...
    assert not hooktools.alive(pid)  # ... is gone
    assert SERVICE not in machine.state()["systemd"]["units"]
    assert machine.files() == {}


def test_a_bad_dropin_and_a_second_principal_that_goes(whole, tmp_path):
    machine = whole.machine
    other_charm = tmp_path / "other-node"
    (other_charm / "src").mkdir(parents=True)
    (other_charm / "collectors").mkdir()
    (other_charm / "charmcraft.yaml").write_text(OTHER_CHARMCRAFT)
    (other_charm / "src" / "charm.py").write_text(OTHER_CHARM)
    (other_charm / "collectors" / "other_facts.py").write_text(OTHER_COLLECTOR)
    other = machine.deploy(other_charm)
    other.deploy()
    bad = machine.path("/etc/dwellir-harvester/config.d/zz-by-hand.yaml")
    bad.write_text(BAD_DROPIN)
    bad.chmod(0o644)

    # 5. The daemon starts with a bad drop-in beside the good one, and serves the good one's collectors;
    # the owner of the machine is blocked, naming the file; the second unit stands by.
    harvester = whole.deploy_harvester(other)
    [pid] = machine.daemon_pids()
    document = whole.wait_for("other-facts ran", lambda d: "other-facts" in d["collectors"])
    assert statuses(document) == {
        "host": "success",
        "juju": "success",
        "juju-charm": "success",
        "other-facts": "success",
    }
    [problem] = document["harvester"]["problems"]
    assert problem["where"] == str(bad)
    node = whole.deploy_node()
    standby = whole.deploy_harvester(node)
    assert standby.status() == ("active", "standing by: dwellir-harvester/0 runs the harvester on this machine")
    document = whole.wait_for("the example's collectors ran too", lambda d: set(d["collectors"]) >= EXAMPLES)
    assert set(statuses(document).values()) == {"success"}
    assert len(statuses(document)) == 7
    harvester.hook("update-status")
    status, message = harvester.status()
    assert status == "blocked"
    assert message.startswith(f"{bad}: left out: "), message
    assert "\n" not in message

    # 6. The principal goes (its subordinate unit first, which stood by): its Harvester removes its
    # drop-in and reloads the daemon, whose next document no longer has its collectors.
    before = document["harvester"]["collection_time"]
    node.remove()
    document = whole.wait_for(
        "the example's collectors are gone", lambda d: not set(d["collectors"]) & EXAMPLES, after=before
    )
    assert statuses(document) == {
        "host": "success",
        "juju": "success",
        "juju-charm": "success",
        "other-facts": "success",
    }
    assert list(document["collectors"]["juju-charm"]["data"]["applications"]) == ["other-node"]
    known = machine.state()["systemd"]["units"][SERVICE]
    assert (machine.daemon_pids(), known["pid"], known["state"]) == ([pid], pid, "active")
    assert not machine.path(DROPIN).exists()


def test_the_machines_documents_reach_s3_when_the_operator_adds_an_endpoint(whole):
    """`juju config dwellir-harvester s3-endpoint-url=... s3-bucket=... s3-credentials=<secret>` on a
    running machine: the daemon sends each document to the S3-compatible server (moto's, on loopback)."""
    from tests.support import ACCESS_KEY, SECRET_KEY, MotoServer

    server = MotoServer()
    server.start()
    try:
        server.bucket("harvests")
        machine = whole.machine
        whole.deploy_node()
        harvester = whole.deploy_harvester()
        whole.wait_for("every collector ran", lambda d: set(d["collectors"]) >= EXAMPLES)
        credentials = harvester.add_secret({"access-key-id": ACCESS_KEY, "secret-access-key": SECRET_KEY})
        harvester.config(
            s3_endpoint_url=server.url, s3_bucket="harvests", s3_region="us-east-1", s3_credentials=credentials
        )
        harvester.hook("config-changed")
        assert harvester.status()[0] == "active", harvester.status()

        def delivered() -> dict[str, bytes]:
            objects = server.objects("harvests", "dwellir-harvester/")
            return {key: body for key, body in objects.items() if key.endswith("/latest.json")}

        deadline = time.monotonic() + 60
        while not delivered() and time.monotonic() < deadline:
            time.sleep(0.2)
        [(key, body)] = delivered().items()
        uuid = machine.state()["model"]["uuid"]
        assert key.startswith(f"dwellir-harvester/{uuid}/") and key.endswith("/latest.json"), key
        document = json.loads(body)
        assert set(document["collectors"]) >= EXAMPLES | {"host", "juju", "juju-charm"}
        assert statuses(document)["polkadot"] == "success", whole.journal()

        # The credentials are only in the 0640 credentials file, never in a log, status or other file.
        said = json.dumps([harvester.logs(), harvester.juju()["status_history"]]) + whole.journal()
        assert SECRET_KEY not in said
        assert world_readable_files_holding(machine.root, SECRET_KEY) == []
        assert stat.S_IMODE(machine.path("/etc/dwellir-harvester/s3-credentials.yaml").stat().st_mode) == 0o640
    finally:
        server.stop()

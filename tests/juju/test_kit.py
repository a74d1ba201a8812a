"""The kit keeps Juju's rules: the hook tools in-process, then two charms on one machine through ``dispatch``."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.juju import Machine, VenvCache, hooktools  # noqa: E402

EXAMPLE = REPO / "examples" / "example-charm"


def new_state() -> dict:
    """A machine with a principal (leader), its subordinate (not leader) and a juju-info relation between them."""
    unit = {
        "leader": False,
        "principal": "",
        "options": ["rpc-url"],
        "config": {"rpc-url": "http://127.0.0.1:9944"},
        "endpoints": {},
        "action": None,
        "logs": [],
        "status": {},
        "status_history": [],
        "ports": [],
    }
    address = {"private-address": "10.0.0.5"}
    return {
        "machine": {"root": "/nonexistent", "gid": 0, "python": sys.executable},
        "users": {},
        "systemd": {"units": {}, "warnings": [], "started": []},
        "model": {"name": "prod", "uuid": "u-1"},
        "secrets": {
            "secret:aaaaaaaaaaaaaaaaaaaa": {"content": {"tokens": "t-1"}, "owner": None, "grants": ["node"]},
            "secret:bbbbbbbbbbbbbbbbbbbb": {"content": {"tokens": "t-2"}, "owner": None, "grants": []},
        },
        "relations": {
            "3": {
                "interface": "juju-info",
                "scope": "container",
                "ends": {
                    "node": {"endpoint": "juju-info", "data": {"app-key": "app-value"}},
                    "agent": {"endpoint": "juju-info", "data": {}},
                },
                "units": {"node/0": dict(address), "agent/0": dict(address), "node/1": dict(address)},
            }
        },
        "units": {
            "node/0": {**copy.deepcopy(unit), "app": "node", "leader": True},
            "node/1": {**copy.deepcopy(unit), "app": "node"},
            "agent/0": {
                **copy.deepcopy(unit),
                "app": "agent",
                "principal": "node/0",
                "endpoints": {"juju-info": {"role": "requires", "interface": "juju-info", "scope": "container"}},
            },
        },
        "calls": [],
        "longest_arg": 0,
    }


def tool(capsys, state, unit, name, *args, env=None, stdin=""):
    """Run one stand-in in-process: (exit code, stdout, stderr)."""
    code = hooktools.call(state, unit, name, list(args), env or {}, stdin)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- hook tools ---------------------------------------------------------------------------------


def test_action_tools_work_only_in_an_action(capsys):
    state = new_state()
    for name, args in (("action-get", []), ("action-set", ["a=1"]), ("action-log", ["x"]), ("action-fail", [])):
        assert tool(capsys, state, "node/0", name, *args) == (1, "", f"ERROR {name} can only be used in an action\n")
    state["units"]["node/0"]["action"] = {"name": "a", "params": {"n": 1}, "results": {}, "log": [], "failed": None}
    assert tool(capsys, state, "node/0", "action-get", "n")[:2] == (0, "1")
    assert (
        tool(capsys, state, "node/0", "action-set", "stdout=x")[2] == 'ERROR cannot set reserved action key "stdout"\n'
    )
    assert "lowercase alphanumeric" in tool(capsys, state, "node/0", "action-set", "Out=1")[2]
    assert tool(capsys, state, "node/0", "action-set", "out.put-file=1")[0] == 0
    assert state["units"]["node/0"]["action"]["results"] == {"out.put-file": "1"}


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("0/tcp", 'ERROR port range bounds must be between 1 and 65535, got "0"'),
        ("70000", 'ERROR port range bounds must be between 1 and 65535, got "70000"'),
        ("80/sctp", 'ERROR invalid protocol "sctp", expected "tcp", "udp", or "icmp"'),
        ("90-80/tcp", 'ERROR invalid port range "90-80": the lower bound is greater than the upper one'),
        ("http", 'ERROR invalid port or range "http"'),
    ],
)
def test_open_port_refuses_what_juju_refuses(capsys, spec, error):
    state = new_state()
    assert tool(capsys, state, "agent/0", "open-port", spec) == (1, "", error + "\n")
    assert state["units"]["agent/0"]["ports"] == []


def test_ports_open_list_and_close(capsys):
    state = new_state()
    for spec in ("18080/tcp", "18080", "9000-9010/udp", "icmp"):
        assert tool(capsys, state, "agent/0", "open-port", spec)[0] == 0
    assert json.loads(tool(capsys, state, "agent/0", "opened-ports", "--format=json")[1]) == [
        "18080/tcp",
        "9000-9010/udp",
        "icmp",
    ]
    assert tool(capsys, state, "agent/0", "close-port", "18080/tcp")[0] == 0
    assert state["units"]["agent/0"]["ports"] == ["9000-9010/udp", "icmp"]
    assert state["units"]["node/0"]["ports"] == []  # ports are the unit's own


def test_secret_get_needs_a_grant(capsys):
    state = new_state()
    granted, other = "secret:aaaaaaaaaaaaaaaaaaaa", "secret:bbbbbbbbbbbbbbbbbbbb"
    assert tool(capsys, state, "node/0", "secret-get", "--format=json", granted)[:2] == (0, '{"tokens": "t-1"}')
    assert tool(capsys, state, "agent/0", "secret-get", granted) == (1, "", "ERROR permission denied\n")
    assert tool(capsys, state, "node/0", "secret-get", other) == (1, "", "ERROR permission denied\n")
    missing = tool(capsys, state, "node/0", "secret-get", "secret:cccccccccccccccccccc")
    assert missing == (1, "", 'ERROR secret "cccccccccccccccccccc" not found\n')
    assert tool(capsys, state, "node/0", "secret-get", granted, "--refresh", "--peek")[0] == 1
    # A label the unit gives a secret finds it again (for the unit's application only).
    assert tool(capsys, state, "node/0", "secret-get", granted, "--label", "tokens")[0] == 0
    assert tool(capsys, state, "node/1", "secret-get", "--label", "tokens")[1] == '{"tokens": "t-1"}'
    assert tool(capsys, state, "agent/0", "secret-get", "--label", "tokens")[0] == 1


def test_config_get_and_status_set_keep_the_rules(capsys):
    state = new_state()
    assert json.loads(tool(capsys, state, "node/0", "config-get", "--format=json")[1]) == {
        "rpc-url": "http://127.0.0.1:9944"
    }
    assert tool(capsys, state, "node/0", "config-get", "nope") == (1, "", 'ERROR unknown config option "nope"\n')
    assert tool(capsys, state, "node/1", "status-set", "--application", "active")[2] == (
        "ERROR this unit is not the leader\n"
    )
    assert tool(capsys, state, "node/0", "status-set", "error", "x")[0] == 1
    assert tool(capsys, state, "node/0", "is-leader", "--format=json")[1] == "true"
    assert tool(capsys, state, "node/1", "is-leader", "--format=json")[1] == "false"


def test_relation_tools_keep_juju_rules(capsys):
    state = new_state()
    env = {"JUJU_RELATION": "juju-info", "JUJU_RELATION_ID": "juju-info:3", "JUJU_REMOTE_UNIT": "node/0"}
    assert tool(capsys, state, "agent/0", "relation-ids", "juju-info", "--format=json")[1] == '["juju-info:3"]'
    assert tool(capsys, state, "agent/0", "relation-ids", "nope")[0] == 1
    # Container scope: the subordinate sees its own principal only, and the principal its subordinate.
    assert tool(capsys, state, "agent/0", "relation-list", "-r", "3", "--format=json")[1] == '["node/0"]'
    assert tool(capsys, state, "node/0", "relation-list", "-r", "juju-info:3")[1] == '["agent/0"]'
    assert tool(capsys, state, "node/1", "relation-list", "-r", "3")[1] == "[]"
    assert tool(capsys, state, "agent/0", "relation-list", "--app", env=env)[1] == '"node"'
    # relation-get defaults to JUJU_RELATION_ID and JUJU_REMOTE_UNIT, and reads members only.
    got = tool(capsys, state, "agent/0", "relation-get", "--format=json", "-", env=env)
    assert json.loads(got[1]) == {"private-address": "10.0.0.5"}
    assert tool(capsys, state, "agent/0", "relation-get", "private-address", "node/0", env=env)[1] == '"10.0.0.5"'
    assert "settings not found" in tool(capsys, state, "agent/0", "relation-get", "-", "node/1", env=env)[2]
    assert tool(capsys, state, "agent/0", "relation-get", "-")[2] == "ERROR no relation id specified\n"
    assert "relation not found" in tool(capsys, state, "agent/0", "relation-get", "-r", "7", "-", "node/0")[2]
    assert "relation not found" in tool(capsys, state, "agent/0", "relation-get", "-r", "db:3", "-", "node/0")[2]
    # Application bags: the remote one is readable, the own one only by the leader.
    remote_app = tool(capsys, state, "agent/0", "relation-get", "-r", "3", "--app", "-", "node", env=env)
    assert json.loads(remote_app[1]) == {"app-key": "app-value"}
    own_app = tool(capsys, state, "node/1", "relation-get", "-r", "3", "--app", "-", "node")
    assert own_app == (1, "", "ERROR permission denied\n")
    assert tool(capsys, state, "node/0", "relation-get", "-r", "3", "--app", "-", "node")[0] == 0
    # relation-set: the unit's own bag; the application's only as the leader; "" deletes a key.
    stdin = json.dumps({"port": "18080", "private-address": ""})
    assert tool(capsys, state, "agent/0", "relation-set", "--file", "-", env=env, stdin=stdin)[0] == 0
    assert state["relations"]["3"]["units"]["agent/0"] == {"port": "18080"}
    refused = tool(capsys, state, "agent/0", "relation-set", "-r", "3", "--app", "--file", "-", stdin='{"a": "b"}')
    assert refused == (1, "", "ERROR cannot write relation settings: permission denied\n")
    assert tool(capsys, state, "agent/0", "relation-set", "--file", "-", env=env, stdin='{"n": 1}')[0] == 1
    assert json.loads(tool(capsys, state, "agent/0", "relation-model-get", "-r", "3")[1]) == {"uuid": "u-1"}
    goal = json.loads(tool(capsys, state, "agent/0", "goal-state", "--format=json")[1])
    assert set(goal["relations"]["juju-info"]) == {"node", "node/0"}


# --- two charms on one machine ------------------------------------------------------------------

AGENT_CHARMCRAFT = """
name: test-agent
type: charm
summary: A test-only subordinate.
description: Relates to a principal over juju-info and writes what it saw under its paths root.
subordinate: true
base: ubuntu@24.04
platforms:
  amd64:
requires:
  juju-info:
    interface: juju-info
    scope: container
"""

AGENT_CHARM = """#!/usr/bin/env python3
import dataclasses
import json
import os
from pathlib import Path
from typing import ClassVar

import ops
from charmlibs import systemd as charmlibs_systemd


@dataclasses.dataclass(frozen=True)
class Paths:
    root: Path = Path("/")

    @property
    def seen(self) -> Path:
        return self.root / "var/lib/test-agent/seen.json"


class AgentCharm(ops.CharmBase):
    paths: ClassVar[Paths] = Paths()
    systemd: ClassVar[object] = charmlibs_systemd

    def __init__(self, framework):
        super().__init__(framework)
        framework.observe(self.on.juju_info_relation_joined, self._on_joined)
        framework.observe(self.on.juju_info_relation_departed, self._on_departed)

    def _on_joined(self, event):
        import tinyextra  # only this charm's venv has it

        self.unit.open_port("tcp", 18080)
        event.relation.data[self.unit]["agent-port"] = "18080"
        seen = {
            "remote": event.unit.name,
            "app": event.app.name,
            "address": event.relation.data[event.unit]["private-address"],
            "env": {k: os.environ.get(k) for k in ("JUJU_RELATION", "JUJU_RELATION_ID", "JUJU_PRINCIPAL_UNIT")},
            "extra": tinyextra.VALUE,
            "running": self.systemd.service_running("test-agent"),
        }
        self.paths.seen.parent.mkdir(parents=True, exist_ok=True)
        self.paths.seen.write_text(json.dumps(seen))
        self.unit.status = ops.ActiveStatus(f"next to {event.unit.name}")

    def _on_departed(self, event):
        self.unit.close_port("tcp", 18080)
        self.paths.seen.unlink()


if __name__ == "__main__":
    ops.main(AgentCharm)
"""


@pytest.fixture
def machine(tmp_path, tmp_path_factory):
    with Machine(tmp_path, VenvCache.for_session(tmp_path_factory)) as made:
        yield made


def test_two_charms_on_one_machine_each_with_its_venv_and_state(tmp_path, machine):
    agent_dir = tmp_path / "agent-charm"
    (agent_dir / "src").mkdir(parents=True)
    (agent_dir / "charmcraft.yaml").write_text(AGENT_CHARMCRAFT)
    (agent_dir / "src" / "charm.py").write_text(AGENT_CHARM)
    (agent_dir / "tests").mkdir()  # not packed
    extra = tmp_path / "tinyextra.py"
    extra.write_text("VALUE = 'only in the agent venv'\n")

    node = machine.deploy(EXAMPLE)
    agent = machine.deploy(agent_dir, venv_extras=[extra], principal=node)
    assert (node.name, agent.name) == ("harvester-example/0", "test-agent/0")
    assert not (agent.charm / "tests").exists()
    assert (agent.charm / "venv" / "tinyextra.py").exists()
    assert not (node.charm / "venv" / "tinyextra.py").exists()
    node.deploy()
    agent.deploy()

    relation = agent.relate(node, "juju-info")

    seen = json.loads(machine.path("/var/lib/test-agent/seen.json").read_text())
    assert seen == {
        "remote": "harvester-example/0",
        "app": "harvester-example",
        "address": "10.0.0.5",
        "env": {
            "JUJU_RELATION": "juju-info",
            "JUJU_RELATION_ID": f"juju-info:{relation.id}",
            "JUJU_PRINCIPAL_UNIT": "harvester-example/0",
        },
        "extra": "only in the agent venv",
        "running": False,
    }
    assert agent.status() == ("active", "next to harvester-example/0")
    assert node.status() == ("active", "ships unit-facts, polkadot to the harvester")
    assert agent.opened_ports() == ["18080/tcp"]
    assert node.opened_ports() == []
    assert [r.id for r in node.relations()] == [relation.id]
    # Each unit's own tools: the agent's systemctl call is recorded as the agent's.
    assert ["systemctl", "--quiet", "is-active", "test-agent"] in agent.calls()
    assert ["systemctl", "--quiet", "is-active", "test-agent"] not in node.calls()
    hooks = [run.name for run in agent.runs]
    assert hooks[-3:] == [
        "hooks/juju-info-relation-created",
        "hooks/juju-info-relation-joined",
        "hooks/juju-info-relation-changed",
    ]

    node.remove()  # the subordinate goes first

    assert not machine.path("/var/lib/test-agent/seen.json").exists()
    assert [run.name for run in agent.runs][-4:] == [
        "hooks/juju-info-relation-departed",
        "hooks/juju-info-relation-broken",
        "hooks/stop",
        "hooks/remove",
    ]
    assert machine.units == {}
    assert machine.files() == {}


def test_deploy_refuses_what_juju_refuses(tmp_path, machine):
    node = machine.deploy(EXAMPLE)
    with pytest.raises(ValueError, match="already deployed"):
        machine.deploy(EXAMPLE, "harvester-example/0")
    with pytest.raises(ValueError, match='has no option "port"'):
        node.config(port=18080)
    with pytest.raises(ValueError, match="type string"):
        node.config(rpc_url=5)
    with pytest.raises(ValueError, match='has no endpoint "db"'):
        node.relate(machine.deploy(EXAMPLE), "db")
    with pytest.raises(node.ParamsRefused, match="not defined"):
        node.action("show-config")

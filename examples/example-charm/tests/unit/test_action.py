"""The run-collectors action, answered by the Harvester with the charm's collectors."""

from __future__ import annotations

import json

import pytest
from ops import testing

from dwellir_harvester.lib import validate_output


def run_action(ctx, unit, params=None, **state):
    ctx.run(ctx.on.action("run-collectors", params=params or {}), unit.state(**state))
    document = json.loads(ctx.action_results["output"])
    validate_output(document)
    return document


def test_the_default_action_runs_host_the_charms_collectors_and_juju_charm(ctx, unit, machine, node, kit):
    document = run_action(ctx, unit, config={"rpc-url": node.url})

    assert list(document["collectors"]) == ["host", "unit-facts", "polkadot", "juju-charm"]
    assert ctx.action_results["status"] == "success"
    assert document["host"] == document["collectors"]["host"]["data"]
    facts = document["collectors"]["unit-facts"]["data"]
    assert (facts["application"], facts["unit"], facts["model"]) == ("harvester-example", "harvester-example/0", "prod")
    assert facts["config"]["rpc-url"] == node.url
    chain = document["collectors"]["polkadot"]
    assert chain["meta"]["collector_type"] == "blockchain"
    assert chain["data"]["blockchain"]["chain_id"] == kit.GENESIS
    assert chain["data"]["health"]["peers"] == 42
    context = document["collectors"]["juju-charm"]["data"]["applications"]["harvester-example"]
    assert context["topology"]["unit"] == "harvester-example/0"


@pytest.mark.parametrize("subordinate", [True, False])
def test_the_action_needs_no_daemon_and_writes_nothing_but_the_snapshot(ctx, unit, machine, node, subordinate):
    if not subordinate:
        machine.systemd.uninstall(unit.SERVICE)
    document = run_action(ctx, unit, config={"rpc-url": node.url})

    assert document["collectors"]["polkadot"]["meta"]["status"] == "success"
    assert set(machine.files()) == {"var/lib/dwellir-harvester/charms/harvester-example.json"}
    assert machine.systemd.calls == []


def test_collectors_and_timeout_params(ctx, unit, machine, node):
    document = run_action(ctx, unit, {"collectors": "polkadot, unit-facts", "timeout": 5}, config={"rpc-url": node.url})

    assert list(document["collectors"]) == ["polkadot", "unit-facts"]
    assert "running 2 collectors (5 s each): polkadot, unit-facts" in ctx.action_logs


def test_a_node_that_does_not_answer_makes_the_result_partial_not_failed(ctx, unit, machine):
    document = run_action(ctx, unit, config={"rpc-url": "http://127.0.0.1:9"})

    entry = document["collectors"]["polkadot"]
    assert entry["meta"]["status"] == "failed"
    assert "system_name at http://127.0.0.1:9" in entry["meta"]["errors"][0]
    assert ctx.action_results["status"] == "partial"
    assert any(line.startswith("polkadot: failed: ") for line in ctx.action_logs)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"collectors": "host nope"}, "unknown collector 'nope' (available: "),
        ({"timeout": 0}, "timeout must be greater than 0 and at most 3600 seconds, not 0"),
        ({"timeout": -1.5}, "timeout must be greater than 0 and at most 3600 seconds, not -1.5"),
    ],
)
def test_bad_params_fail_the_action_with_the_reason(ctx, unit, machine, params, message):
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("run-collectors", params=params), unit.state())

    assert failed.value.message.startswith(message)
    if "unknown" in message:
        for name in ("host", "juju-charm", "polkadot", "unit-facts"):
            assert name in failed.value.message

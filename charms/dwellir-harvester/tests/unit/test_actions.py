"""The run-collectors and show-config actions: the machine's whole harvest, through the charm's runner."""

from __future__ import annotations

import json
import stat

import pytest
from ops import testing

from dwellir_harvester.lib import validate_output

TOKEN = "tok-5f0c1e9a7b"


def installed(ctx, unit, **state_kwargs):
    return ctx.run(ctx.on.install(), unit.state(**state_kwargs))


def run_action(ctx, out, name="run-collectors", **params):
    ctx.run(ctx.on.action(name, params=params), out)
    return ctx.action_results


# --- run-collectors --------------------------------------------------------------------------


def test_run_collectors_harvests_every_dropin_and_the_runners_builtins(ctx, unit, machine):
    machine.add_principal("my-node", {"peers": "return {'peers': 12}"})
    machine.add_principal("other-node", {"height": "return {'height': 7}"})
    out = installed(ctx, unit)

    results = run_action(ctx, out, validate=True)

    document = json.loads(results["output"])
    validate_output(document)
    assert results["status"] == "success"
    assert list(document["collectors"]) == ["host", "juju", "juju-charm", "peers", "height"]
    assert document["collectors"]["peers"]["data"] == {"peers": 12}
    assert document["collectors"]["height"]["meta"]["source"].startswith("path:")
    assert document["harvester"]["problems"] == []
    assert ctx.action_logs[-1].startswith("done in ") and ctx.action_logs[-1].endswith(" ms: success")


def test_run_collectors_with_names_timeout_and_no_validation(ctx, unit, machine):
    machine.add_principal("my-node", {"peers": "return {'peers': 12}"})
    out = installed(ctx, unit)

    results = run_action(ctx, out, collectors="peers, host", timeout=5, validate=False)

    assert list(json.loads(results["output"])["collectors"]) == ["peers", "host"]
    assert results["status"] == "success"


def test_run_collectors_exclude_leaves_names_out_of_the_machines_harvest(ctx, unit, machine):
    machine.add_principal("my-node", {"peers": "return {'peers': 12}"})
    out = installed(ctx, unit)

    results = run_action(ctx, out, exclude="host juju, juju-charm")
    assert list(json.loads(results["output"])["collectors"]) == ["peers"]
    with pytest.raises(testing.ActionFailed, match="unknown collector 'hots'"):
        run_action(ctx, out, exclude="hots")


def test_a_failing_collector_makes_it_partial_and_is_logged_on_one_line(ctx, unit, machine):
    machine.add_principal(
        "my-node",
        {"peers": "return {}", "broken": "raise CollectorFailedError('node down\\nat http://admin:hunter2@10.0.0.5')"},
    )
    out = installed(ctx, unit)

    results = run_action(ctx, out, collectors="peers broken")

    assert results["status"] == "partial"
    lines = [line for line in ctx.action_logs if line.startswith("broken: failed: ")]
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert "hunter2" not in lines[0]


def test_only_failing_collectors_make_it_failed(ctx, unit, machine):
    machine.add_principal("my-node", {"broken": "raise CollectorFailedError('node down')"})
    out = installed(ctx, unit)

    results = run_action(ctx, out, collectors="broken")

    assert results["status"] == "failed"
    assert json.loads(results["output"])["collectors"]["broken"]["meta"]["errors"] == ["node down"]


def test_a_document_too_large_for_results_goes_to_a_private_file(ctx, unit, machine):
    machine.add_principal("my-node", {"blob": "return {'blob': 'x' * 200_000}"})
    out = installed(ctx, unit)

    results = run_action(ctx, out, collectors="blob")

    assert set(results) == {"output-file", "status"}
    path = machine.root.joinpath(results["output-file"])
    assert path.parent == machine.paths.results_dir
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["collectors"]["blob"]["data"]["blob"] == "x" * 200_000

    ctx.run(ctx.on.remove(), out)  # the unit's result files go with it
    assert not path.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"collectors": "host nope"}, "unknown collector 'nope' (available: "),
        ({"timeout": 0}, "timeout must be greater than 0 and at most 3600 seconds, not 0"),
        ({"timeout": -1.5}, "timeout must be greater than 0 and at most 3600 seconds, not -1.5"),
    ],
)
def test_bad_params_fail_the_action_with_the_reason(ctx, unit, machine, params, message):
    out = installed(ctx, unit)

    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("run-collectors", params=params), out)

    assert failed.value.message.startswith(message)
    assert "\n" not in failed.value.message


def test_run_collectors_before_the_harvester_is_configured_fails_saying_so(ctx, unit, machine):
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("run-collectors"), unit.state())

    assert failed.value.message.startswith("the harvester is not configured on this machine yet")


def test_a_bad_dropin_is_left_out_and_reported_while_the_rest_runs(ctx, unit, machine):
    machine.add_principal("my-node", {"peers": "return {'peers': 1}"})
    machine.add_principal("bad-node", {"blocks": "return {}"}, collector_options={"blocks": {"no_such": 1}})
    out = installed(ctx, unit)

    results = run_action(ctx, out)

    document = json.loads(results["output"])
    assert "peers" in document["collectors"] and "blocks" not in document["collectors"]
    (problem,) = document["harvester"]["problems"]
    assert problem["where"].endswith("config.d/bad-node.yaml")
    assert any(line.startswith("left out: ") and "bad-node.yaml" in line for line in ctx.action_logs)


# --- show-config -----------------------------------------------------------------------------


def test_show_config_prints_the_effective_config_with_secrets_redacted(ctx, unit, machine):
    machine.add_user("dwellir-harvester")
    options = {"peers": {"rpc_password": "hunter2"}}
    machine.add_principal("my-node", {"peers": "return {}"}, "rpc_password=''", collector_options=options)
    secret = testing.Secret({"tokens": TOKEN})
    out = installed(ctx, unit, config={"auth-tokens": secret.id, "port": 19001}, secrets={secret})

    results = run_action(ctx, out, "show-config")

    text = results["config"]
    config = json.loads(text)
    assert config["port"] == 19001
    assert config["selected"] == ["host", "juju", "juju-charm", "peers"]
    assert config["auth_token_file"] == str(machine.paths.token_file)
    assert config["auth_tokens"] == 1
    assert config["problems"] == []
    assert TOKEN not in text
    assert "hunter2" not in text


def test_show_config_lists_what_is_left_out(ctx, unit, machine):
    machine.add_principal("bad-node", {"blocks": "return {}"}, collectors=["blocks", "nope"])
    out = installed(ctx, unit)

    results = run_action(ctx, out, "show-config")

    (problem,) = json.loads(results["config"])["problems"]
    assert problem["where"].endswith("bad-node.yaml")
    assert "unknown collector 'nope'" in problem["problem"]
    assert any(line.startswith("left out: ") for line in ctx.action_logs)


def test_show_config_before_the_harvester_is_configured_fails_saying_so(ctx, unit, machine):
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("show-config"), unit.state())

    assert failed.value.message.startswith("the harvester is not configured on this machine yet")

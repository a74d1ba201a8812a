"""The run-collectors action: results Juju can carry, partial runs, timeouts, bad input, big documents."""

from __future__ import annotations

import json
import re
import stat
import time

import pytest
from ops import testing

from dwellir_harvester.lib import validate_output
from dwellir_harvester.lib.limits import MAX_MESSAGE

RESULT_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def run_action(ctx, kit, **params):
    ctx.run(ctx.on.action("run-collectors", params=params), kit.state())
    return ctx.action_results


def check_juju_rules(results):
    """What action-set accepts: key syntax, no reserved keys, string values within MAX_ARG_STRLEN."""
    assert results
    for key, value in results.items():
        assert RESULT_KEY.match(key), key
        assert key not in ("stdout", "stderr", "stdout-encoding", "stderr-encoding")
        assert isinstance(value, str)
        assert len(f"{key}={value}".encode()) + 1 <= 131072


def document_of(results):
    check_juju_rules(results)
    assert set(results) == {"output", "status"}
    document = json.loads(results["output"])
    validate_output(document)
    return document


def test_a_good_run_returns_the_document_with_host_the_charms_collectors_and_juju_charm(context, sandbox, kit):
    ctx = context()
    results = run_action(ctx, kit)

    document = document_of(results)
    assert results["status"] == "success"
    assert document["harvester"]["collectors_used"] == ["host", "blocks", "peers", "juju-charm"]
    entries = document["collectors"]
    assert all(entry["meta"]["status"] == "success" for entry in entries.values())
    assert entries["peers"]["data"] == {"peers": 12, "rpc_url": "http://127.0.0.1:9944"}
    assert entries["peers"]["meta"]["source"].endswith("/collectors/peers.py")
    assert document["host"] == entries["host"]["data"] and document["host"]["hostname"]

    live = entries["juju-charm"]
    assert live["meta"]["source"] == "charm:harvested"
    snapshot = sandbox.read_snapshot(kit.APP)  # the action leaves the snapshot too
    app = live["data"]["applications"]["harvested"]
    assert "format" not in app
    assert {k: v for k, v in app.items() if k != "updated"} == {
        k: v for k, v in snapshot.items() if k not in ("format", "updated")
    }
    assert app["config"]["api-key"] == "<redacted>"
    assert any(line.startswith("running 4 collectors") for line in ctx.action_logs)
    assert any(line.endswith(": success") for line in ctx.action_logs)


def test_collectors_param_takes_spaces_and_commas(context, sandbox, kit):
    ctx = context()
    document = document_of(run_action(ctx, kit, collectors="peers,  blocks juju-charm,peers"))
    assert document["harvester"]["collectors_used"] == ["peers", "blocks", "juju-charm"]
    assert document["host"] == {}


def test_options_given_to_the_object_reach_the_collectors(context, sandbox, kit):
    ctx = context(collector_options={"peers": {"rpc_url": "http://node:9944"}})
    document = document_of(run_action(ctx, kit, collectors="peers"))
    assert document["collectors"]["peers"]["data"]["rpc_url"] == "http://node:9944"


def test_a_failing_collector_makes_a_partial_run_not_a_failed_action(context, sandbox, charm_root, kit):
    kit.write_collector(charm_root / "collectors", "broken")
    ctx = context()
    results = run_action(ctx, kit, collectors="peers broken")

    document = document_of(results)
    assert results["status"] == "partial"
    broken = document["collectors"]["broken"]["meta"]
    assert broken["status"] == "failed"
    assert broken["errors"] == ["RuntimeError: node unreachable"]
    assert "broken: failed: RuntimeError: node unreachable" in ctx.action_logs

    results = run_action(ctx, kit, collectors="broken")
    assert results["status"] == "failed"  # still results, not a failed action


def test_a_collector_that_outlives_the_timeout_is_reported_not_waited_for(context, sandbox, charm_root, kit):
    kit.write_collector(charm_root / "collectors", "slow")
    ctx = context()
    started = time.monotonic()
    results = run_action(ctx, kit, collectors="peers slow", timeout=0.3)
    elapsed = time.monotonic() - started

    document = document_of(results)
    assert elapsed < 1.5
    assert results["status"] == "partial"
    slow = document["collectors"]["slow"]["meta"]
    assert slow["status"] == "timeout"
    assert slow["errors"] == ["did not return within 0.3 s"]
    assert document["collectors"]["peers"]["meta"]["status"] == "success"


def test_validate_false_skips_each_collectors_schema(context, sandbox, charm_root, kit):
    kit.write_collector(
        charm_root / "collectors",
        "typed",
        """
        from dwellir_harvester.lib import GenericCollector

        class TypedCollector(GenericCollector):
            NAME = "typed"
            SCHEMA = {"type": "object", "properties": {"peers": {"type": "integer"}}}

            def collect(self):
                return {"peers": "twelve"}
        """,
    )
    ctx = context()
    assert run_action(ctx, kit, collectors="typed")["status"] == "failed"
    assert run_action(ctx, kit, collectors="typed", validate=False)["status"] == "success"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"collectors": "peers nope"}, "unknown collector 'nope' (available: "),
        ({"collectors": "nope, zilch"}, "unknown collectors 'nope', 'zilch' (available: "),
        ({"timeout": 0}, "timeout must be greater than 0 and at most 3600 seconds, not 0"),
        ({"timeout": -1}, "timeout must be greater than 0 and at most 3600 seconds, not -1"),
        ({"timeout": -0.5}, "timeout must be greater than 0 and at most 3600 seconds, not -0.5"),
        ({"timeout": 1e10}, "timeout must be greater than 0 and at most 3600 seconds, not 10000000000.0"),
        ({"timeout": 3601}, "timeout must be greater than 0 and at most 3600 seconds, not 3601"),
        ({"timeout": 10**400}, "timeout must be greater than 0 and at most 3600 seconds, not 1000000000"),
    ],
)
def test_bad_input_fails_the_action_with_one_line(context, sandbox, kit, params, message):
    ctx = context()
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, kit, **params)
    text = failed.value.message
    assert message in text
    assert "\n" not in text
    if "unknown" in message:
        listed = text.split("(available: ", 1)[1].rstrip(")").split(", ")
        assert {"blocks", "peers", "host", "juju-charm"} <= set(listed)
    assert ctx.action_results is None


def test_a_huge_timeout_fails_the_action_instead_of_losing_the_document(context, sandbox, kit):
    """1e10 s passed every check before and crashed the hook with OverflowError deep in threading."""
    ctx = context()
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, kit, collectors="peers", timeout=1e10)
    assert failed.value.message == "timeout must be greater than 0 and at most 3600 seconds, not 10000000000.0"
    assert run_action(ctx, kit, collectors="peers", timeout=3600)["status"] == "success"  # the limit itself


def test_a_huge_unknown_name_gives_a_bounded_failure(context, sandbox, kit):
    """A 1 MB name used to come back whole in action-fail, past the kernel's argument limit."""
    ctx = context()
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, kit, collectors="x" * (1024 * 1024))
    text = failed.value.message
    assert len(text) <= MAX_MESSAGE
    assert text.startswith("unknown collector 'xxx")
    assert "\n" not in text


def test_many_unknown_names_are_listed_a_few_at_a_time(context, sandbox, kit):
    ctx = context()
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, kit, collectors=" ".join(f"nope{i}" for i in range(500)))
    text = failed.value.message
    assert len(text) <= MAX_MESSAGE
    assert text.startswith("unknown collectors 'nope0', 'nope1', 'nope2', 'nope3', 'nope4' and 495 more (available: ")


def test_every_log_line_and_failure_is_one_bounded_line(context, sandbox, charm_root, kit):
    kit.write_collector(
        charm_root / "collectors",
        "chatty",
        """
        from dwellir_harvester.lib import GenericCollector

        class ChattyCollector(GenericCollector):
            NAME = "chatty"

            def collect(self):
                raise RuntimeError("line one\\nline two " + "y" * 100_000)
        """,
    )
    ctx = context()
    assert run_action(ctx, kit, collectors="chatty")["status"] == "failed"
    assert ctx.action_logs
    for line in ctx.action_logs:
        assert "\n" not in line and len(line) <= MAX_MESSAGE


def test_a_missing_collector_dir_fails_the_action(context, sandbox, kit, charm_root):
    ctx = context(collector_dir="gone")
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, kit)
    assert failed.value.message == f"collector dir {charm_root / 'gone'} does not exist"


def test_a_document_too_large_for_results_goes_to_a_private_file(context, sandbox, charm_root, kit):
    kit.write_collector(charm_root / "collectors", "huge")
    ctx = context()
    results = run_action(ctx, kit, collectors="huge peers")

    check_juju_rules(results)
    assert set(results) == {"output-file", "status"}
    assert results["status"] == "success"
    path = sandbox.results_dir / results["output-file"].rsplit("/", 1)[1]
    assert str(path) == results["output-file"]
    assert path.parent == sandbox.snapshot_dir.parent / "action-results"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    document = json.loads(path.read_text())
    validate_output(document)
    assert len(document["collectors"]["huge"]["data"]["blob"]) == 300 * 1024
    assert document["harvester"]["collectors_used"] == ["huge", "peers"]


def test_a_document_just_under_the_limit_stays_inline(context, sandbox, charm_root, kit):
    kit.write_collector(
        charm_root / "collectors",
        "big",
        """
        from dwellir_harvester.lib import GenericCollector

        class BigCollector(GenericCollector):
            NAME = "big"

            def collect(self):
                return {"blob": "y" * (120 * 1024)}
        """,
    )
    ctx = context()
    results = run_action(ctx, kit, collectors="big")
    assert len(document_of(results)["collectors"]["big"]["data"]["blob"]) == 120 * 1024


def test_old_result_files_are_pruned_and_removed_with_the_unit(context, sandbox, charm_root, kit):
    kit.write_collector(charm_root / "collectors", "huge")
    ctx = context()
    for _ in range(7):
        run_action(ctx, kit, collectors="huge")
    assert len(list(sandbox.results_dir.iterdir())) == 5
    ctx.run(ctx.on.remove(), kit.state())
    assert list(sandbox.results_dir.iterdir()) == []


def test_the_live_juju_charm_entry_wins_over_a_discovered_one(context, sandbox, charm_root, kit):
    kit.write_collector(
        charm_root / "collectors",
        "juju_charm",
        """
        from dwellir_harvester.lib import GenericCollector

        class StaleJujuCharm(GenericCollector):
            NAME = "juju-charm"

            def collect(self):
                return {"applications": {}}
        """,
    )
    ctx = context()
    for params in ({}, {"collectors": "juju-charm"}):
        entry = document_of(run_action(ctx, kit, **params))["collectors"]["juju-charm"]
        assert entry["meta"]["source"] == "charm:harvested"
        assert list(entry["data"]["applications"]) == ["harvested"]


def test_an_undeclared_action_is_a_warning_once_not_a_crash(context, sandbox, kit):
    ctx = context(declare_action=False)
    state = ctx.run(ctx.on.install(), kit.state())
    warnings = [line.message for line in ctx.juju_log if line.level == "WARNING" and "run-collectors" in line.message]
    assert len(warnings) == 1
    assert "charmcraft.yaml" in warnings[0]
    assert sandbox.dropin_path(kit.APP).exists()
    assert state.unit_status == testing.ActiveStatus()


def test_action_none_answers_no_action_and_warns_nothing(context, sandbox, kit):
    ctx = context(declare_action=False, action=None)
    ctx.run(ctx.on.install(), kit.state())
    assert not [line for line in ctx.juju_log if "run-collectors" in line.message]


CRASHES = """
import os
from dwellir_harvester.lib import GenericCollector


class Crashes(GenericCollector):
    NAME = "crashes"

    def collect(self):
        import time

        time.sleep(0.5)  # after peers has reported: a dying worker fails only what had not
        os._exit(9)  # a broken C extension, a stray sys.exit in a thread: the interpreter is gone
"""


def test_a_collector_that_ends_its_interpreter_fails_alone_and_the_hook_lives(context, charm_root, kit):
    """The action runs the collectors in a worker: before, os._exit in a collector ended the hook itself."""
    kit.write_collector(charm_root / "collectors", "crashes", CRASHES)
    ctx = context()

    results = run_action(ctx, kit, collectors="peers crashes")

    document = document_of(results)
    assert results["status"] == "partial"
    assert document["collectors"]["peers"]["meta"]["status"] == "success"
    crashed = document["collectors"]["crashes"]["meta"]
    assert crashed["status"] == "failed"
    assert crashed["errors"] == ["its worker exited with status 9 while this collector was running"]


def test_with_isolation_thread_the_action_runs_in_the_hook(context, kit):
    ctx = context(isolation="thread")

    document = document_of(run_action(ctx, kit, collectors="peers"))

    assert document["collectors"]["peers"]["meta"]["status"] == "success"


def test_the_dropin_names_the_hooks_interpreter_and_the_charms_import_directories(
    context, sandbox, charm_root, kit, monkeypatch
):
    import sys

    for name in ("venv", "lib"):
        (charm_root / name).mkdir()
    monkeypatch.syspath_prepend(str(charm_root / "lib"))
    monkeypatch.syspath_prepend(str(charm_root / "venv"))
    ctx = context()

    ctx.run(ctx.on.install(), kit.state())

    dropin = sandbox.read_dropin(kit.APP)
    assert dropin["python"] == sys.executable
    assert dropin["python_path"] == [str(charm_root / "venv"), str(charm_root / "lib")]

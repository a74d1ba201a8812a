"""The action without Juju: ``_action.run`` (parameters in, results, log lines and a failure out) and ``deliver``."""

from __future__ import annotations

import json
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwellir_harvester.charm import _action
from dwellir_harvester.lib import load_collectors
from dwellir_harvester.lib.limits import MAX_MESSAGE

SNAPSHOT = {"format": 1, "updated": "2026-01-01T00:00:00+00:00", "topology": {"unit": "app/0"}, "config": {}}

LEAKY = """
from dwellir_harvester.lib import GenericCollector

class LeakyCollector(GenericCollector):
    NAME = "leaky"

    def collect(self):
        raise RuntimeError("cannot reach http://admin:hunter2@10.0.0.7:8545 with password=hunter2")
"""


@pytest.fixture
def directory(charm_root):
    return charm_root / "collectors"


@pytest.fixture
def registry(directory):
    return load_collectors([directory], env=False)


def run(registry, directory, **params):
    return _action.run(params, registry, app="app", snapshot=SNAPSHOT, directory=directory)


def test_a_good_run_gives_results_and_log_lines_and_no_failure(registry, directory):
    outcome = run(registry, directory)
    assert outcome.failure is None
    assert set(outcome.results) == {"output", "status"}
    document = json.loads(outcome.results["output"])
    assert document["harvester"]["collectors_used"] == ["host", "blocks", "peers", "juju-charm"]
    assert document["collectors"]["juju-charm"]["data"] == {
        "applications": {"app": {k: v for k, v in SNAPSHOT.items() if k != "format"}}
    }
    assert outcome.results["status"] == "success"
    assert outcome.logs[0] == "running 4 collectors: host, blocks, peers, juju-charm"
    assert outcome.logs[-1].endswith(" ms: success")


def test_the_charms_collectors_and_options_are_used(registry, directory):
    outcome = _action.run(
        {},
        registry,
        app="app",
        snapshot=SNAPSHOT,
        directory=directory,
        collectors=["peers"],
        options={"peers": {"rpc_url": "http://node:9944"}, "juju-charm": {"ignored": True}},
    )
    document = json.loads(outcome.results["output"])
    assert document["harvester"]["collectors_used"] == ["host", "peers", "juju-charm"]
    assert document["collectors"]["peers"]["data"]["rpc_url"] == "http://node:9944"


def test_without_the_runner_excluding_host_is_a_no_op_and_running_it_says_what_to_add(directory):
    """``host`` is the runner's: leaving it out where it is not installed leaves out nothing."""
    registry = load_collectors([directory], env=False, entry_points=False)
    assert "host" not in registry

    outcome = run(registry, directory, exclude="host")
    assert outcome.failure is None
    assert json.loads(outcome.results["output"])["harvester"]["collectors_used"] == ["blocks", "peers", "juju-charm"]
    assert run(registry, directory, exclude="hots").failure.startswith("exclude: unknown collector 'hots' (available: ")

    failure = run(registry, directory, collectors="host").failure
    assert failure.startswith("unknown collector 'host' (available: blocks, juju-charm, peers); host is a built-in")


@pytest.mark.parametrize(
    ("params", "failure"),
    [
        ({"timeout": 1e10}, "timeout must be greater than 0 and at most 3600 seconds, not 10000000000.0"),
        ({"timeout": "10"}, "timeout must be a number of seconds, not '10'"),
        ({"timeout": True}, "timeout must be a number of seconds, not True"),
        ({"validate": "yes"}, "validate must be true or false, not 'yes'"),
        (
            {"collectors": ["peers"]},
            "collectors must be a string of names separated by spaces or commas, not ['peers']",
        ),
        ({"collectors": "nope"}, "unknown collector 'nope' (available: "),
    ],
)
def test_bad_input_is_a_failure_without_results(registry, directory, params, failure):
    outcome = run(registry, directory, **params)
    assert outcome.results is None
    assert outcome.failure.startswith(failure)


def test_too_many_names_are_refused(registry, directory):
    outcome = run(registry, directory, collectors=" ".join(f"c{i}" for i in range(_action.MAX_NAMES + 1)))
    assert outcome.failure == f"collectors names {_action.MAX_NAMES + 1} collectors, more than the limit of 1000"


def test_the_unknown_name_failure_is_bounded_whatever_it_is_given(registry, directory):
    outcome = run(registry, directory, collectors=("z" * 1_000_000) + " " + " ".join(f"n{i}" for i in range(300)))
    assert len(outcome.failure) <= MAX_MESSAGE
    assert outcome.failure.startswith(f"unknown collectors '{'z' * 59}…', 'n0', 'n1', 'n2', 'n3' and 296 more")


def test_available_names_are_listed_a_bounded_number_at_a_time():
    assert _action.listing([f"c{i:02}" for i in range(25)], limit=3) == "c00, c01, c02 and 22 more"
    assert _action.listing(["a", "b"]) == "a, b"


def test_collector_errors_reach_the_log_redacted(directory, kit):
    kit.write_collector(directory, "leaky", LEAKY)
    registry = load_collectors([directory], env=False)
    outcome = run(registry, directory, collectors="leaky")
    assert outcome.results["status"] == "failed"
    assert outcome.failure is None  # a failing collector does not fail the action
    line = next(line for line in outcome.logs if line.startswith("leaky: failed: "))
    assert "hunter2" not in line
    assert "<redacted>" in line


def test_a_plugin_that_does_not_import_is_a_log_line(directory, kit):
    kit.write_collector(directory, "zbroken", "raise RuntimeError('token=abc123def456 broke it')\n")
    registry = load_collectors([directory], env=False)
    outcome = run(registry, directory, collectors="peers")
    skipped = [line for line in outcome.logs if line.startswith("skipped plugin ")]
    assert len(skipped) == 1 and "zbroken.py" in skipped[0]
    assert "abc123def456" not in skipped[0]


def test_deliver_keeps_a_small_document_inline(tmp_path, registry, directory):
    outcome = run(registry, directory, collectors="peers")
    assert _action.deliver(outcome, tmp_path / "results", "app/0") is outcome
    assert not (tmp_path / "results").exists()


def test_deliver_moves_a_large_document_to_a_private_file(tmp_path):
    text = json.dumps({"blob": "x" * _action.MAX_ARG_BYTES})
    outcome = _action.ActionOutcome({"output": text, "status": "partial"}, ("a line",), None)
    delivered = _action.deliver(outcome, tmp_path / "results", "app/0")
    path = tmp_path / "results" / delivered.results["output-file"].rsplit("/", 1)[1]
    assert delivered.results == {"output-file": str(path), "status": "partial"}
    assert delivered.logs == ("a line",) and delivered.failure is None
    assert path.read_text() == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_deliver_fails_the_action_when_the_file_cannot_be_written(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the directory should be")
    outcome = _action.ActionOutcome({"output": "y" * _action.MAX_ARG_BYTES, "status": "success"}, ("kept",), None)
    delivered = _action.deliver(outcome, blocker, "app/0")
    assert delivered.results is None
    assert delivered.logs == ("kept",)
    assert delivered.failure.startswith("the document is too large for action results and writing it failed: ")


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=200),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "collectors": JSON_LIKE | st.text(alphabet=" ,\n\tpeblockrsx\x00é", max_size=300),
            "exclude": JSON_LIKE | st.text(alphabet=" ,\n\tpeblockrsx\x00é", max_size=300),
            "validate": JSON_LIKE,
            "timeout": JSON_LIKE | st.floats(min_value=1e-3, max_value=5),
        },
    )
)
def test_any_params_give_an_outcome_with_bounded_lines_never_an_exception(charm_root, params):
    """Whatever Juju hands over (it checks types, but a charm may declare the params differently)."""
    directory = charm_root / "collectors"
    registry = load_collectors([directory], env=False, entry_points=False)
    outcome = _action.run(params, registry, app="app", snapshot=SNAPSHOT, directory=directory)
    assert outcome.results is not None or outcome.failure is not None
    for line in (*outcome.logs, outcome.failure or ""):
        assert "\n" not in line and len(line) <= MAX_MESSAGE
    if outcome.results is not None:
        assert outcome.results["status"] in ("success", "partial", "failed")

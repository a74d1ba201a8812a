"""``dwellir_harvester.charm.action``: the action's rules, public for charms that answer an action of their own."""

from __future__ import annotations

import json
import stat

import pytest

from dwellir_harvester.charm import action


def test_the_module_exports_exactly_what_its_docstring_lists():
    assert action.__doc__ is not None
    for name in action.__all__:
        assert hasattr(action, name)
        documented = f"``{name}" in action.__doc__ or name in ("KEEP_RESULT_FILES", "MAX_ARG_BYTES", "Request")
        assert documented, name
        assert getattr(action, name).__doc__ or name.isupper()


def test_parse_params_applies_the_helpers_rules():
    request = action.parse_params({"collectors": "peers, host peers", "validate": False, "timeout": 2})
    assert request == action.Request(("peers", "host"), False, 2.0)
    assert action.parse_params({}) == action.Request(None, True, None)
    with pytest.raises(action.ActionInputError, match=r"^timeout must be greater than 0"):
        action.parse_params({"timeout": float("nan")})
    with pytest.raises(action.ActionInputError, match=r"^validate must be true or false"):
        action.parse_params({"validate": "yes"})
    request = action.parse_params({"exclude": "host,juju-charm host"})
    assert request.names is None and request.exclude == ("host", "juju-charm")
    with pytest.raises(action.ActionInputError, match=r"^exclude must be a string of names .*, not 7$"):
        action.parse_params({"exclude": 7})
    with pytest.raises(action.ActionInputError, match=r"^exclude names 1001 collectors, more than the limit of 1000"):
        action.parse_params({"exclude": " ".join(f"c{i}" for i in range(1001))})


def test_an_unknown_host_says_how_to_get_it():
    """``host`` is the runner's: a charm without the runner installed is told what to add."""
    from dwellir_harvester.charm._action import unknown_names

    message = unknown_names(["host"], ["peers", "juju-charm"])
    assert message.startswith("unknown collector 'host' (available: peers, juju-charm); host is a built-in of")
    assert "add it to the charm's requirements" in message
    assert "built-in" not in unknown_names(["peres"], ["peers"])


def test_failed_and_redacted_make_one_bounded_line_without_secrets():
    outcome = action.failed("cannot reach\nhttp://admin:hunter2@10.0.0.7:8545 " + "x" * 5000, ["a"])
    assert outcome.results is None and outcome.logs == ("a",)
    assert outcome.failure is not None
    assert "\n" not in outcome.failure and "hunter2" not in outcome.failure
    assert len(outcome.failure) <= 1000


def test_deliver_moves_a_large_output_to_a_private_file(tmp_path):
    small = action.ActionOutcome({"output": "{}", "status": "success"}, (), None)
    assert action.deliver(small, tmp_path / "results", "app/0") is small

    text = json.dumps({"blob": "x" * action.MAX_ARG_BYTES})
    delivered = action.deliver(action.ActionOutcome({"output": text, "status": "partial"}, (), None), tmp_path, "app/0")

    assert delivered.results is not None and set(delivered.results) == {"output-file", "status"}
    path = tmp_path / delivered.results["output-file"]
    assert path.read_text() == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not action.fits_in_result("config", text)

    action.prune_result_files(tmp_path, "app/0", keep=0)
    assert not path.exists()

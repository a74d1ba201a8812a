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

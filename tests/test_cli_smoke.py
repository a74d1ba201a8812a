"""The quick start's main job, end to end through the real command."""

from __future__ import annotations


def test_collect_with_no_names_harvests_host_and_validates(run_cli, validate_document):
    result = run_cli("collect")
    assert result.returncode == 0, result
    document = result.json()
    validate_document(document)
    assert document["harvester"]["collectors_used"] == ["host"]
    assert document["collectors"]["host"]["meta"]["status"] == "success"
    assert document["host"] == document["collectors"]["host"]["data"]
    assert document["host"]["hostname"]


def test_unknown_collector_is_a_usage_error_listing_the_available_names(run_cli):
    result = run_cli("collect", "nope")
    assert result.returncode == 2, result
    assert "unknown collector 'nope'" in result.stderr
    assert "host" in result.stderr and "null" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""

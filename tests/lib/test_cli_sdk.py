"""The SDK end to end through the real ``dwellir-harvester`` command."""

from __future__ import annotations

import json

import pytest

PLUGINS = {
    "good.py": """
        from dwellir_harvester.lib import GenericCollector

        class Good(GenericCollector):
            NAME = "good"

            def collect(self):
                return {"fine": True}
    """,
    "bad.py": """
        from dwellir_harvester.lib import GenericCollector

        class Bad(GenericCollector):
            NAME = "bad"

            def collect(self):
                raise RuntimeError("node is down")
    """,
    "slow.py": """
        import time
        from dwellir_harvester.lib import GenericCollector

        class Slow(GenericCollector):
            NAME = "slow"

            def collect(self):
                time.sleep(30)
                return {}
    """,
}


@pytest.fixture
def plugins(plugin_dir):
    return plugin_dir(**PLUGINS)


def test_collect_reports_failures_and_timeouts_and_still_prints_a_valid_document(run_cli, plugins, validate_document):
    result = run_cli("collect", "--collector-path", str(plugins), "--timeout", "0.3", "good", "bad", "slow", timeout=20)

    assert result.returncode == 1, result
    document = result.json()
    validate_document(document)
    statuses = {name: e["meta"]["status"] for name, e in document["collectors"].items()}
    assert statuses == {"good": "success", "bad": "failed", "slow": "timeout"}
    assert document["collectors"]["bad"]["meta"]["errors"] == ["RuntimeError: node is down"]
    assert document["collectors"]["good"]["meta"]["source"] == f"path:{plugins / 'good.py'}"
    assert "Traceback" not in result.stderr


def test_collect_with_exclude(run_cli, plugins, validate_document):
    result = run_cli("collect", "--collector-path", str(plugins), "--exclude", "bad", "good", "bad")

    assert result.returncode == 0, result
    document = result.json()
    validate_document(document)
    assert document["harvester"]["collectors_used"] == ["good"]


def test_list_json_shows_source_and_overrides(run_cli, plugin_dir):
    directory = plugin_dir(
        **{
            "mynull.py": """
                from dwellir_harvester.lib import GenericCollector

                class MyNull(GenericCollector):
                    NAME = "null"
                    VERSION = "7.0.0"

                    def collect(self):
                        return {}
            """
        }
    )
    result = run_cli("list", "--json", "--collector-path", str(directory))

    assert result.returncode == 0, result
    rows = {row["name"]: row for row in result.json()["collectors"]}
    mine = rows["null"]
    assert mine["source"] == f"path:{directory / 'mynull.py'}"
    assert mine["version"] == "7.0.0"
    assert mine["overrides"] == ["builtin:dwellir_harvester.collectors.null"]
    assert rows["builtin::null"]["overridden_by"] == mine["source"]
    assert rows["python-runtime"]["source"] == "entry-point:dwellir-harvester-example-plugin[python-runtime]"
    assert "overrides" in result.stderr and "builtin::null" in result.stderr


def test_validate_accepts_a_produced_document_and_rejects_an_undeclared_key(run_cli, tmp_path):
    produced = tmp_path / "doc.json"
    collected = run_cli("collect", "null", "--output", str(produced))
    assert collected.returncode == 0, collected

    valid = run_cli("validate", str(produced))
    assert valid.returncode == 0, valid

    document = json.loads(produced.read_text())
    document["system"] = {"kernel": "6.8"}
    extended = tmp_path / "extended.json"
    extended.write_text(json.dumps(document))
    invalid = run_cli("validate", str(extended))
    assert invalid.returncode == 1, invalid
    assert "'system'" in invalid.stderr

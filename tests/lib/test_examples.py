"""The shipped examples work as their docs say: a drop-in plugin and an installable plugin package."""

from __future__ import annotations

from pathlib import Path

from dwellir_harvester.lib import harvest, load_collectors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIST = "dwellir-harvester-example-plugin"


def test_the_sample_plugin_is_discovered_from_its_dir_and_harvests(validate_document):
    collectors = load_collectors([EXAMPLES / "plugins"], entry_points=False)

    spec = collectors.specs["sample"]
    assert spec.source == f"path:{EXAMPLES / 'plugins' / 'sample_collector.py'}"
    assert collectors.problems == []

    document = harvest(["sample"], registry=collectors, options={"sample": {"greeting": "hi"}})
    validate_document(document)
    entry = document["collectors"]["sample"]
    assert entry["meta"]["status"] == "success"
    assert entry["meta"]["collector_version"] == "1.0.0"
    assert entry["data"]["greeting"] == "hi"
    assert entry["data"]["python_version"].count(".") == 2


def test_the_plugin_package_harvests_by_name_and_by_namespaced_name(validate_document):
    collectors = load_collectors()
    document = harvest(["python-runtime", f"{DIST}::python-runtime"], registry=collectors)
    validate_document(document)

    # both names reach the same collector, so it runs once under the first name
    assert document["harvester"]["collectors_used"] == ["python-runtime"]
    entry = document["collectors"]["python-runtime"]
    assert entry["meta"]["status"] == "success"
    assert entry["meta"]["source"] == f"entry-point:{DIST}[python-runtime]"
    assert entry["data"]["implementation"] == "CPython"

    namespaced = harvest([f"{DIST}::python-runtime"], registry=collectors)
    validate_document(namespaced)
    assert namespaced["collectors"][f"{DIST}::python-runtime"]["meta"]["status"] == "success"


def test_harvest_finds_the_plugin_package_without_a_registry():
    document = harvest([f"{DIST}::python-runtime"])
    assert document["collectors"][f"{DIST}::python-runtime"]["meta"]["collector_name"] == "python-runtime"

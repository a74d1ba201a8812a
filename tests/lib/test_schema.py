"""The bundled schema and validate_output: exact shape, formats checked, readable errors."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from dwellir_harvester.lib import (
    DocumentValidationError,
    GenericCollector,
    bundled_schema_path,
    harvest,
    validate_output,
)


class Ok(GenericCollector):
    NAME = "ok"

    def collect(self):
        return {"peers": 12}


@pytest.fixture
def document() -> dict:
    return harvest([Ok])


def violations(document: dict) -> list[str]:
    with pytest.raises(DocumentValidationError) as info:
        validate_output(document)
    assert info.value.errors, "a DocumentValidationError must list its errors"
    return info.value.errors


def test_the_bundled_schema_is_a_valid_json_schema():
    path = bundled_schema_path()

    assert path.is_file()
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"harvester", "host", "collectors"}


def test_a_produced_document_validates(document):
    validate_output(document)
    validate_output(document, schema=bundled_schema_path())
    validate_output(document, schema=str(bundled_schema_path()))


def test_an_undeclared_top_level_key_is_rejected(document):
    document["system"] = {"kernel": "6.8"}

    [error] = violations(document)
    assert error.startswith("(top level): ")
    assert "'system'" in error


def test_a_bad_status_is_rejected_with_its_path(document):
    document["collectors"]["ok"]["meta"]["status"] = "grand"

    errors = violations(document)
    assert any(e.startswith("collectors.ok.meta.status: ") and "'grand'" in e for e in errors)


@pytest.mark.parametrize(
    "when",
    [
        "yesterday",
        "2026-13-01T00:00:00+00:00",
        "2026-01-01T00:00:00",
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00+25:00",
    ],
)
def test_a_collection_time_must_be_rfc3339_with_an_offset(document, when):
    bad_meta = copy.deepcopy(document)
    bad_meta["collectors"]["ok"]["meta"]["collection_time"] = when
    assert any(e.startswith("collectors.ok.meta.collection_time: ") for e in violations(bad_meta))

    bad_top = copy.deepcopy(document)
    bad_top["harvester"]["collection_time"] = when
    assert any(e.startswith("harvester.collection_time: ") for e in violations(bad_top))


@pytest.mark.parametrize("when", ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123+02:00", "2026-06-30T23:59:60Z"])
def test_rfc3339_times_with_an_offset_pass(document, when):
    document["collectors"]["ok"]["meta"]["collection_time"] = when
    validate_output(document)


def test_a_success_entry_with_errors_is_rejected(document):
    document["collectors"]["ok"]["meta"]["errors"] = ["something"]

    assert any(e.startswith("collectors.ok.meta.errors: ") for e in violations(document))


@pytest.mark.parametrize("status", ["failed", "partial", "timeout"])
def test_an_entry_that_did_not_succeed_must_say_why(document, status):
    document["collectors"]["ok"]["meta"]["status"] = status

    assert any(e.startswith("collectors.ok.meta.errors: ") for e in violations(document))


def test_an_entry_without_collector_version_or_with_extra_meta_is_rejected(document):
    del document["collectors"]["ok"]["meta"]["collector_version"]
    document["collectors"]["ok"]["meta"]["message"] = "hi"

    errors = violations(document)
    assert all(e.startswith("collectors.ok.meta: ") for e in errors)
    assert any("collector_version" in e for e in errors)
    assert any("'message'" in e for e in errors)


def test_every_violation_is_listed_and_counted_in_the_message(document):
    document["system"] = {}
    document["collectors"]["ok"]["meta"]["status"] = "grand"
    document["collectors"]["ok"]["data"] = []

    with pytest.raises(DocumentValidationError) as info:
        validate_output(document)
    paths = [e.split(": ", 1)[0] for e in info.value.errors]
    assert paths == sorted(paths, key=lambda p: "" if p == "(top level)" else p)
    assert {"(top level)", "collectors.ok.data", "collectors.ok.meta.status"} <= set(paths)
    assert f"(and {len(info.value.errors) - 1} more)" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_missing_schema_file_raises_file_not_found_naming_it(document, tmp_path):
    missing = tmp_path / "nope.schema.json"

    with pytest.raises(FileNotFoundError, match=str(missing)):
        validate_output(document, schema=missing)


def test_a_schema_file_that_is_not_json_raises_value_error_naming_it(document, tmp_path):
    broken = tmp_path / "broken.schema.json"
    broken.write_text("{not json")

    with pytest.raises(ValueError, match=str(broken)):
        validate_output(document, schema=broken)


def test_a_schema_given_as_a_mapping_is_used(document):
    validate_output(document, schema={"type": "object"})
    with pytest.raises(DocumentValidationError):
        validate_output(document, schema={"type": "object", "required": ["extra"]})

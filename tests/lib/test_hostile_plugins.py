"""Collectors and plugins written to break the harvester: each one fails only itself.

Every test here failed before its fix (the foundations issue): a huge integer lost the whole
document, an exception whose ``__str__`` raises was reported as a timeout, a KeyboardInterrupt at
import lost every plugin, a hostile class attribute stalled or crashed a harvest, and a reload that
re-imported a hung plugin started it again.
"""

from __future__ import annotations

import json
import logging
import threading

import pytest

from dwellir_harvester.lib import (
    STATUSES,
    CollectorSpec,
    GenericCollector,
    collector_statuses,
    harvest,
    load_collectors,
    overall_status,
    validate_output,
)
from dwellir_harvester.lib.limits import MAX_DEPTH, MAX_INT_BITS, MAX_MESSAGE, MAX_TIMEOUT


def plugins_only(*paths):
    return load_collectors(paths, entry_points=False, env=False)


class Fine(GenericCollector):
    NAME = "fine"

    def collect(self):
        return {"ok": True}


def entry(document, name):
    return document["collectors"][name]


# --- data that JSON writers cannot take -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10**5000, f"larger than 2**{MAX_INT_BITS}"),
        (-(10**400), f"larger than 2**{MAX_INT_BITS}"),
        (2 ** (MAX_INT_BITS + 1), f"larger than 2**{MAX_INT_BITS}"),
    ],
    ids=["5000-digits", "negative-400-digits", "just-past-the-bound"],
)
def test_a_huge_integer_fails_only_its_own_entry(value, message, validate_document):
    class Huge(GenericCollector):
        NAME = "huge"

        def collect(self):
            return {"block": {"number": value}}

    document = harvest([Huge, Fine])

    huge = entry(document, "huge")["meta"]
    assert huge["status"] == "failed"
    assert "data.block.number" in huge["errors"][0] and message in huge["errors"][0]
    assert entry(document, "fine")["meta"]["status"] == "success"
    json.dumps(document)  # the document stays writable
    validate_document(document)


def test_the_largest_allowed_integer_is_kept():
    class Big(GenericCollector):
        NAME = "big"

        def collect(self):
            return {"n": 2**MAX_INT_BITS - 1, "u256": 2**256 - 1}

    assert entry(harvest([Big]), "big")["data"]["u256"] == 2**256 - 1


def test_data_nested_too_deeply_fails_only_its_own_entry():
    class Deep(GenericCollector):
        NAME = "deep"

        def collect(self):
            value: object = 1
            for _ in range(10_000):
                value = {"a": value}
            return {"deep": value}

    document = harvest([Deep, Fine])

    meta = entry(document, "deep")["meta"]
    assert meta["status"] == "failed"
    assert f"nested more than {MAX_DEPTH} levels" in meta["errors"][0]
    assert len(meta["errors"][0]) <= MAX_MESSAGE
    assert entry(document, "fine")["meta"]["status"] == "success"


# --- messages ---------------------------------------------------------------------------------------


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def test_an_exception_whose_str_raises_is_failed_not_timeout():
    class Raises(GenericCollector):
        NAME = "raises"
        TIMEOUT = 5.0

        def collect(self):
            raise _Unprintable()

    meta = entry(harvest([Raises]), "raises")["meta"]
    assert meta["status"] == "failed"
    assert meta["errors"] == ["_Unprintable (its message could not be read)"]


def test_error_messages_are_redacted_single_lines_and_bounded():
    class Leaky(GenericCollector):
        NAME = "leaky"

        def collect(self):
            from dwellir_harvester.lib import CollectResult

            return CollectResult(
                {},
                [
                    "cannot reach http://admin:hunter2@10.0.0.1:9944\nsecond line",
                    "login failed: password=hunter2 token: hunter2",
                    "x" * 10_000_000,
                    *[f"message {i}" for i in range(500)],
                ],
            )

    meta = entry(harvest([Leaky]), "leaky")["meta"]
    assert meta["status"] == "partial"
    text = json.dumps(meta["errors"])
    assert "hunter2" not in text
    assert all("\n" not in e and len(e) <= MAX_MESSAGE for e in meta["errors"])
    assert len(meta["errors"]) <= 51
    assert meta["errors"][-1].startswith("(and ") and meta["errors"][-1].endswith(" more messages)")


# --- class attributes, read once at discovery ----------------------------------------------------


HOSTILE_ATTRIBUTES = {
    "version_blocks": (
        "class BlockingStr(str):\n"
        "    def __str__(self):\n"
        "        import time; time.sleep(3600)\n"
        "    __repr__ = __str__\n",
        "VERSION = BlockingStr('1.0')",
        "invalid VERSION a BlockingStr",
    ),
    "timeout_huge": ("", "TIMEOUT = 1e10", "invalid TIMEOUT 10000000000.0"),
    "timeout_nan": ("", "TIMEOUT = float('nan')", "invalid TIMEOUT nan"),
    "timeout_str": ("", "TIMEOUT = '5'", "invalid TIMEOUT '5'"),
    "type_bad": ("", "COLLECTOR_TYPE = 'Block Chain'", "invalid COLLECTOR_TYPE"),
    "name_raises": (
        "class Meta(type(GenericCollector)):\n    @property\n    def NAME(cls):\n        raise RuntimeError('boom')\n",
        "pass",
        "cannot be read: RuntimeError: boom",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ATTRIBUTES))
def test_a_hostile_class_attribute_is_a_load_problem_and_the_rest_loads(case, plugin_dir, caplog):
    prelude, attribute, message = HOSTILE_ATTRIBUTES[case]
    metaclass = ", metaclass=Meta" if "Meta" in prelude else ""
    name_line = "" if metaclass else "    NAME = 'hostile'\n"
    hostile = (
        "from dwellir_harvester.lib import GenericCollector\n"
        f"{prelude}\n"
        f"class Hostile(GenericCollector{metaclass}):\n"
        f"{name_line}"
        f"    {attribute}\n"
        "    def collect(self):\n"
        "        return {}\n"
    )
    fine = "from dwellir_harvester.lib import GenericCollector\nclass F(GenericCollector):\n    NAME = 'fine'\n"
    fine += "    def collect(self):\n        return {'ok': 1}\n"
    directory = plugin_dir(**{"a_hostile.py": hostile, "b_fine.py": fine})

    registry = plugins_only(directory)

    assert "hostile" not in registry
    [problem] = registry.problems
    assert problem.where == f"path:{directory / 'a_hostile.py'}"
    assert message in problem.message, problem.message
    assert entry(harvest(["fine"], registry=registry), "fine")["meta"]["status"] == "success"


def test_a_spec_built_by_hand_with_a_bad_attribute_gives_a_failed_entry():
    class BadVersion(GenericCollector):
        NAME = "bad-version"
        VERSION = ["1", "0"]  # type: ignore[assignment]

        def collect(self):
            return {}

    spec = CollectorSpec("bad-version", BadVersion, "mine", "mine:bad")
    document = harvest([spec, Fine])

    meta = entry(document, "bad-version")["meta"]
    assert meta["status"] == "failed" and "invalid VERSION a list" in meta["errors"][-1]
    validate_output(document)


def test_spec_metadata_is_read_once_at_discovery(plugin_dir):
    directory = plugin_dir(
        **{
            "counted.py": "from dwellir_harvester.lib import GenericCollector\n"
            "class C(GenericCollector):\n"
            "    NAME = 'counted'\n    VERSION = '3.1.4'\n    COLLECTOR_TYPE = 'custom'\n    TIMEOUT = 7\n"
            "    def collect(self):\n        return {}\n"
        }
    )
    spec = plugins_only(directory).specs["counted"]

    assert spec.meta is not None
    assert (spec.meta.version, spec.meta.collector_type, spec.meta.timeout) == ("3.1.4", "custom", 7.0)
    assert 0 < spec.meta.timeout <= MAX_TIMEOUT


# --- import-time interruptions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "described"),
    [("raise KeyboardInterrupt", "KeyboardInterrupt"), ("raise SystemExit(5)", "SystemExit: 5")],
)
def test_an_interrupt_at_import_is_a_problem_and_loses_no_other_plugin(statement, described, plugin_dir, source):
    directory = plugin_dir(**{"a.py": source("a"), "b_interrupts.py": statement + "\n", "c.py": source("c")})

    registry = plugins_only(directory)

    assert {"a", "c"} <= set(registry)
    [problem] = registry.problems
    assert problem.where.endswith("b_interrupts.py") and problem.message == described


# --- hung collectors across reloads --------------------------------------------------------------


def test_a_hung_plugin_is_not_started_again_after_a_reload_imports_it_again(plugin_dir, caplog):
    marker = "started_hung_plugin"
    directory = plugin_dir(
        **{
            "hung.py": "import threading, builtins\n"
            "from dwellir_harvester.lib import GenericCollector\n"
            f"builtins.{marker} = getattr(builtins, {marker!r}, 0)\n"
            "class Hung(GenericCollector):\n"
            "    NAME = 'hung'\n    TIMEOUT = 0.2\n"
            "    def collect(self):\n"
            f"        import builtins\n        builtins.{marker} += 1\n"
            "        builtins.release_hung_plugin.wait(30)\n"
            "        return {}\n"
        }
    )
    import builtins

    release = threading.Event()
    builtins.release_hung_plugin = release  # type: ignore[attr-defined]
    try:
        first = plugins_only(directory)
        assert entry(harvest(["hung"], registry=first), "hung")["meta"]["status"] == "timeout"
        for _ in range(3):  # each "reload" imports the plugin again: a new class object
            again = plugins_only(directory)
            assert again.specs["hung"].cls is not first.specs["hung"].cls
            meta = entry(harvest(["hung"], registry=again), "hung")["meta"]
            assert meta["status"] == "timeout"
            assert "still running" in meta["errors"][0]
        assert getattr(builtins, marker) == 1
    finally:
        release.set()
        del builtins.release_hung_plugin  # type: ignore[attr-defined]
        delattr(builtins, marker)


# --- the typed document ----------------------------------------------------------------------------


def test_collector_statuses_and_overall_status_read_the_typed_document():
    class Failing(GenericCollector):
        NAME = "failing"

        def collect(self):
            raise RuntimeError("x")

    document = harvest([Fine, Failing])

    assert collector_statuses(document) == {"fine": "success", "failing": "failed"}
    assert set(collector_statuses(document).values()) <= set(STATUSES)
    assert overall_status(document) == "partial"


def test_the_old_keyword_and_class_name_still_work_with_a_deprecation_warning():
    import dwellir_harvester.lib as lib

    registry = plugins_only()
    with pytest.warns(DeprecationWarning, match="registry="):
        document = harvest([Fine], collectors=registry)
    assert collector_statuses(document) == {"fine": "success"}
    with pytest.warns(DeprecationWarning, match="Registry"):
        assert lib.Collectors is lib.Registry


def test_no_warning_is_logged_for_a_successful_run(caplog):
    caplog.set_level(logging.WARNING)
    harvest([Fine])
    assert not caplog.records


def test_problems_are_reported_in_the_document_bounded_and_declared_by_the_schema(validate_document):
    problems = [
        {"where": "/etc/dwellir-harvester/config.d/bad.yaml", "problem": "not valid YAML at line 3"},
        {"where": "x" * 5000, "problem": "line one\nline two " + "y" * 5000},
    ]
    document = harvest([Fine], problems=problems)

    validate_document(document)
    reported = document["harvester"]["problems"]
    assert reported[0] == problems[0]
    assert all("\n" not in p["problem"] and len(p["problem"]) <= MAX_MESSAGE for p in reported)
    assert "problems" not in harvest([Fine])["harvester"]  # the SDK reports them only when told
    bad = json.loads(json.dumps(document))
    bad["harvester"]["problems"] = [{"where": "x"}]
    with pytest.raises(Exception, match="problem"):
        validate_output(bad)

"""The harvest engine: concurrency, timeouts, statuses, options and the document it builds."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone

import pytest

from dwellir_harvester.lib import (
    BlockchainCollector,
    CollectorFailedError,
    CollectorOptionError,
    CollectorPartialError,
    CollectResult,
    GenericCollector,
    UnknownCollectorError,
    harvest,
    load_collectors,
    overall_status,
)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
META_KEYS = {
    "collector_type",
    "collector_name",
    "collector_version",
    "collection_time",
    "status",
    "errors",
    "duration_ms",
    "source",
}
CHAIN_DATA = {
    "blockchain": {"blockchain_ecosystem": "polkadot", "blockchain_network_name": "kusama", "chain_id": 2},
    "workload": {"client_name": "polkadot", "client_version": "1.0.0"},
}


class Ok(GenericCollector):
    NAME = "ok"
    VERSION = "2.3.4"

    def collect(self):
        return {"peers": 12, "nested": {"list": [1, 2.5, None, True], "tuple": (1, "two")}}


class Partial(GenericCollector):
    NAME = "partial"

    def collect(self):
        raise CollectorPartialError(["no peers", "no height"], data={"version": "1.2"})


class PartialResult(GenericCollector):
    NAME = "partial-result"

    def collect(self):
        return CollectResult({"version": "1.2"}, errors=["peers unknown"])


class FullResult(GenericCollector):
    NAME = "full-result"

    def collect(self):
        return CollectResult({"version": "1.2"})


class Failed(GenericCollector):
    NAME = "failed"

    def collect(self):
        raise CollectorFailedError("node is down")


class Crashes(GenericCollector):
    NAME = "crashes"

    def collect(self):
        return {"x": 1 / 0}


class Exits(GenericCollector):
    NAME = "exits"

    def collect(self):
        sys.exit(3)


class Interrupted(GenericCollector):
    NAME = "interrupted"

    def collect(self):
        raise KeyboardInterrupt


class Greeter(GenericCollector):
    NAME = "greeter"

    def __init__(self, greeting: str = "hello", *, times: int = 1) -> None:
        self.greeting, self.times = greeting, times

    def collect(self):
        return {"said": " ".join([self.greeting] * self.times)}


class NeedsUrl(GenericCollector):
    NAME = "needs-url"

    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url

    def collect(self):
        return {"url": self.rpc_url}


class Wrapped(GenericCollector):
    """Returns the original harvester's ``{meta, data}`` shape; the framework must not unwrap it."""

    NAME = "wrapped"
    RETURNED = {"meta": {"collector_type": "generic", "version": "0.0.5"}, "data": {"foo": "bar"}, "message": "ok"}

    def collect(self):
        return dict(self.RETURNED)


def returning(name: str, value: object) -> type[GenericCollector]:
    """A collector class whose collect() returns ``value``."""
    return type(f"Returns_{name}", (GenericCollector,), {"NAME": name, "collect": lambda self: value})


def counting(name: str, release: threading.Event) -> type[GenericCollector]:
    """A collector that blocks until ``release`` is set and counts how often it was created."""

    class Blocks(GenericCollector):
        NAME = name
        TIMEOUT = 0.2
        created = 0

        def __init__(self) -> None:
            type(self).created += 1

        def collect(self):
            release.wait()
            return {"released": True}

    return Blocks


def entry(document: dict, name: str) -> dict:
    return document["collectors"][name]


def status(document: dict, name: str) -> str:
    return entry(document, name)["meta"]["status"]


# --- concurrency and timeouts --------------------------------------------------------------------


def test_collectors_run_concurrently():
    sleepers = [
        type(
            f"Sleeper{i}", (GenericCollector,), {"NAME": f"sleeper-{i}", "collect": lambda self: time.sleep(0.3) or {}}
        )
        for i in range(10)
    ]
    started = time.monotonic()
    document = harvest(sleepers)
    wall = time.monotonic() - started

    assert wall < 1.5, f"10 collectors of 0.3 s took {wall:.2f} s"
    assert {e["meta"]["status"] for e in document["collectors"].values()} == {"success"}
    assert all(e["meta"]["duration_ms"] >= 290 for e in document["collectors"].values())


def test_the_class_timeout_gives_status_timeout(release):
    blocks = counting("blocks", release)
    started = time.monotonic()
    document = harvest([blocks, Ok])
    wall = time.monotonic() - started

    assert wall < 1.0
    meta = entry(document, "blocks")["meta"]
    assert meta["status"] == "timeout"
    assert meta["errors"] == ["did not return within 0.2 s"]
    assert entry(document, "blocks")["data"] == {}
    assert status(document, "ok") == "success"


def test_a_timeout_per_call_beats_the_class_timeout(release):
    class Slow(GenericCollector):
        NAME = "slow"
        TIMEOUT = 60

        def collect(self):
            release.wait()
            return {}

    started = time.monotonic()
    document = harvest([Slow, Ok], timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert status(document, "slow") == "timeout"
    assert "0.2 s" in entry(document, "slow")["meta"]["errors"][0]
    assert status(document, "ok") == "success"


def test_a_timeout_mapping_applies_per_collector(release):
    class Slow(GenericCollector):
        NAME = "slow"
        TIMEOUT = 60

        def collect(self):
            release.wait(0.5)
            return {"waited": True}

    class AlsoSlow(GenericCollector):
        NAME = "also-slow"

        def collect(self):
            time.sleep(0.3)
            return {"waited": True}

    started = time.monotonic()
    document = harvest([Slow, AlsoSlow], timeout={"slow": 0.1})
    assert time.monotonic() - started < 1.0
    assert status(document, "slow") == "timeout"
    assert status(document, "also-slow") == "success"


@pytest.mark.parametrize("bad", [0, -1, True, "5", {"ok": 0}])
def test_a_bad_timeout_is_refused_before_anything_runs(bad):
    ran = threading.Event()

    class Marks(GenericCollector):
        NAME = "ok"

        def collect(self):
            ran.set()
            return {}

    with pytest.raises(ValueError, match="timeout"):
        harvest([Marks], timeout=bad)
    assert not ran.wait(0.05)


def test_a_hung_collector_is_not_started_again_while_it_hangs(release):
    blocks = counting("hangs", release)

    first = harvest([blocks])
    assert status(first, "hangs") == "timeout"
    assert blocks.created == 1

    started = time.monotonic()
    second = harvest([blocks])
    assert time.monotonic() - started < 0.2  # not even waited for
    assert status(second, "hangs") == "timeout"
    assert "still running" in entry(second, "hangs")["meta"]["errors"][0]
    assert blocks.created == 1

    release.set()
    deadline = time.monotonic() + 2
    while any(t.name == "collector:hangs" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    third = harvest([blocks])
    assert status(third, "hangs") == "success"
    assert blocks.created == 2


def test_a_hung_collector_does_not_block_interpreter_exit(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, time
            from dwellir_harvester.lib import GenericCollector, harvest

            class Forever(GenericCollector):
                NAME = "forever"
                TIMEOUT = 0.2

                def collect(self):
                    while True:
                        time.sleep(3600)

            document = harvest([Forever])
            print(json.dumps(document["collectors"]["forever"]["meta"]))
            """
        )
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=20)
    wall = time.monotonic() - started

    assert proc.returncode == 0, proc.stderr
    assert '"status": "timeout"' in proc.stdout
    assert wall < 5, f"the process took {wall:.1f} s to exit"


# --- statuses -------------------------------------------------------------------------------------


def test_success_entry_keeps_the_data_as_json():
    document = harvest([Ok])
    ok = entry(document, "ok")

    assert ok["meta"]["status"] == "success"
    assert ok["meta"]["errors"] == []
    assert ok["data"] == {"peers": 12, "nested": {"list": [1, 2.5, None, True], "tuple": [1, "two"]}}


@pytest.mark.parametrize(
    ("cls", "errors"),
    [(Partial, ["no peers", "no height"]), (PartialResult, ["peers unknown"])],
    ids=["raised", "result"],
)
def test_partial_keeps_the_data_and_the_messages(cls, errors):
    document = harvest([cls])
    partial = entry(document, cls.NAME)

    assert partial["meta"]["status"] == "partial"
    assert partial["meta"]["errors"] == errors
    assert partial["data"] == {"version": "1.2"}


def test_a_collect_result_without_errors_is_success():
    document = harvest([FullResult])
    assert status(document, "full-result") == "success"
    assert entry(document, "full-result")["data"] == {"version": "1.2"}


@pytest.mark.parametrize(
    ("cls", "error"),
    [
        (Failed, "node is down"),
        (Crashes, "ZeroDivisionError: division by zero"),
        (Exits, "SystemExit: 3"),
        (Interrupted, "KeyboardInterrupt"),
    ],
)
def test_a_failure_is_an_entry_with_its_message(cls, error):
    document = harvest([cls, Ok])

    failed = entry(document, cls.NAME)
    assert failed["meta"]["status"] == "failed"
    assert failed["meta"]["errors"] == [error]
    assert failed["data"] == {}
    assert status(document, "ok") == "success"
    assert entry(document, "ok")["data"]["peers"] == 12


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("{}", "str"),
        ([1, 2], "list"),
        (None, "NoneType"),
        (CollectResult([1, 2]), "list"),
        (CollectResult(None), "NoneType"),
    ],
    ids=["str", "list", "None", "CollectResult-list", "CollectResult-None"],
)
def test_collect_must_return_a_mapping(value, kind):
    document = harvest([returning("odd", value), Ok])

    odd = entry(document, "odd")
    assert odd["meta"]["status"] == "failed"
    assert kind in odd["meta"]["errors"][0]
    assert odd["data"] == {}
    assert status(document, "ok") == "success"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"s": {1, 2}}, "data.s"),
        ({"b": b"raw"}, "data.b"),
        ({"when": datetime(2026, 1, 1, tzinfo=timezone.utc)}, "data.when"),
        ({"deep": {"ratio": math.nan}}, "data.deep.ratio"),
        ({"inf": [1, math.inf]}, "data.inf[1]"),
        ({"by_id": {1: "one"}}, "data.by_id"),
    ],
    ids=["set", "bytes", "datetime", "nan", "inf", "int-key"],
)
def test_data_that_is_not_json_fails_naming_the_path(data, path):
    document = harvest([returning("odd", data), Ok])

    odd = entry(document, "odd")
    assert odd["meta"]["status"] == "failed"
    [error] = odd["meta"]["errors"]
    assert f"not JSON: {path} " in error
    assert status(document, "ok") == "success"


def test_one_failure_never_affects_another_entry(release):
    expected = entry(harvest([Ok]), "ok")["data"]
    document = harvest([Crashes, Exits, Interrupted, counting("stuck", release), Ok, Partial])

    assert entry(document, "ok")["data"] == expected
    assert [e["meta"]["status"] for e in document["collectors"].values()] == [
        "failed",
        "failed",
        "failed",
        "timeout",
        "success",
        "partial",
    ]


# --- options --------------------------------------------------------------------------------------


def test_options_are_passed_to_the_constructor():
    document = harvest(
        [Greeter, NeedsUrl], options={"greeter": {"greeting": "hi", "times": 2}, "needs-url": {"rpc_url": "u"}}
    )

    assert entry(document, "greeter")["data"] == {"said": "hi hi"}
    assert entry(document, "needs-url")["data"] == {"url": "u"}


def test_options_by_name_reach_a_discovered_collector(plugin_dir):
    directory = plugin_dir(
        **{
            "greet.py": """
                from dwellir_harvester.lib import GenericCollector

                class Greet(GenericCollector):
                    NAME = "greet"

                    def __init__(self, greeting="hello"):
                        self.greeting = greeting

                    def collect(self):
                        return {"greeting": self.greeting}
            """
        }
    )
    collectors = load_collectors([directory], entry_points=False)
    document = harvest(["greet"], registry=collectors, options={"greet": {"greeting": "moin"}})
    assert entry(document, "greet")["data"] == {"greeting": "moin"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"greeter": {"greting": "typo"}}, "unknown option 'greting'"),
        ({"ok": {"anything": 1}}, "unknown option 'anything'"),
        ({"needs-url": {}}, "missing required option 'rpc_url'"),
        ({"greeter": ["greeting", "hi"]}, "must be a mapping"),
        ({"greeter": "greeting=hi"}, "must be a mapping"),
        ({"greeter": []}, "must be a mapping"),
    ],
    ids=["unknown", "unknown-no-init", "missing", "list", "str", "empty-list"],
)
def test_bad_options_raise_before_anything_runs(options, message):
    ran = threading.Event()

    class Marks(GenericCollector):
        NAME = "marks"

        def __init__(self) -> None:
            ran.set()

        def collect(self):
            return {}

    with pytest.raises(CollectorOptionError, match=re.escape(message)) as info:
        harvest([Marks, Greeter, NeedsUrl, Ok], options={"needs-url": {"rpc_url": "u"}, **options})
    assert info.value.collector in ("greeter", "ok", "needs-url")
    assert not ran.wait(0.05)


def test_an_unknown_name_raises_before_anything_runs():
    collectors = load_collectors(builtin_distribution="dwellir-harvester")
    with pytest.raises(UnknownCollectorError) as info:
        harvest(["null", "nope"], registry=collectors)
    assert "null" in info.value.available


# --- blockchain collectors and SCHEMA --------------------------------------------------------------


def chain(name: str, body) -> type[BlockchainCollector]:
    return type(f"Chain_{name}", (BlockchainCollector,), {"NAME": name, "VERSION": "1.0.0", "collect": body})


def test_a_complete_blockchain_collector_succeeds_with_its_type():
    document = harvest([chain("chain", lambda self: CHAIN_DATA)])

    meta = entry(document, "chain")["meta"]
    assert (meta["status"], meta["collector_type"], meta["errors"]) == ("success", "blockchain", [])
    assert entry(document, "chain")["data"] == CHAIN_DATA


def test_a_blockchain_collector_missing_fields_fails_naming_them():
    def incomplete(self):
        return {"blockchain": {"blockchain_ecosystem": "polkadot"}, "height": 7}

    document = harvest([chain("chain", incomplete)])

    meta = entry(document, "chain")["meta"]
    assert meta["status"] == "failed"
    assert meta["collector_type"] == "blockchain"
    text = " ".join(meta["errors"])
    for field in ("blockchain.blockchain_network_name", "blockchain.chain_id", "workload.client_name"):
        assert field in text
    assert "blockchain_ecosystem" not in text
    assert entry(document, "chain")["data"]["height"] == 7


def test_a_partial_blockchain_collector_missing_fields_is_failed():
    def partial(self):
        raise CollectorPartialError("rpc slow", data={"workload": CHAIN_DATA["workload"]})

    meta = entry(harvest([chain("chain", partial)]), "chain")["meta"]
    assert meta["status"] == "failed"
    assert meta["errors"][0] == "rpc slow"
    assert "blockchain.chain_id" in meta["errors"][1]


def test_a_blockchain_field_of_the_wrong_type_fails():
    data = {**CHAIN_DATA, "blockchain": {**CHAIN_DATA["blockchain"], "chain_id": True}}
    meta = entry(harvest([chain("chain", lambda self: data)]), "chain")["meta"]
    assert meta["status"] == "failed"
    assert "blockchain.chain_id" in meta["errors"][0]


class WithSchema(GenericCollector):
    NAME = "with-schema"
    SCHEMA = {"type": "object", "required": ["peers"], "properties": {"peers": {"type": "integer"}}}

    def collect(self):
        return {"peers": "twelve"}


def test_data_not_matching_the_collectors_schema_fails_and_keeps_the_data():
    meta_data = entry(harvest([WithSchema]), "with-schema")

    assert meta_data["meta"]["status"] == "failed"
    assert "SCHEMA" in meta_data["meta"]["errors"][0] and "peers" in meta_data["meta"]["errors"][0]
    assert meta_data["data"] == {"peers": "twelve"}


def test_validate_false_skips_the_collectors_schema():
    assert status(harvest([WithSchema], validate=False), "with-schema") == "success"


# --- the document ---------------------------------------------------------------------------------


def test_the_document_has_exactly_the_declared_shape(validate_document):
    collectors = load_collectors(builtin_distribution="dwellir-harvester")
    document = harvest(["null", "host"], registry=collectors, host_collector="host")
    validate_document(document)

    assert set(document) == {"harvester", "host", "collectors"}
    harvester = document["harvester"]
    assert set(harvester) == {"harvester-version", "collection_time", "collectors_used", "duration_ms"}
    assert harvester["collectors_used"] == ["null", "host"] == list(document["collectors"])
    assert RFC3339.match(harvester["collection_time"])
    assert datetime.fromisoformat(harvester["collection_time"]).utcoffset() is not None
    assert harvester["duration_ms"] >= 0
    assert document["host"] == document["collectors"]["host"]["data"]
    assert document["host"]["hostname"]
    assert harvest(["null", "host"], registry=collectors)["host"] == {}  # only the caller says which entry is host
    for name, item in document["collectors"].items():
        assert set(item) == {"meta", "data"}
        assert set(item["meta"]) == META_KEYS
        assert item["meta"]["collector_name"] == name
        assert RFC3339.match(item["meta"]["collection_time"])
        assert "meta" not in item["data"]
    null = document["collectors"]["null"]["meta"]
    assert (null["collector_type"], null["collector_version"], null["source"]) == (
        "generic",
        "1.0.0",
        "builtin:dwellir_harvester.collectors.null",
    )


def test_host_is_empty_when_the_host_collector_did_not_run(validate_document):
    document = harvest([Ok])
    validate_document(document)
    assert document["host"] == {}
    meta = entry(document, "ok")["meta"]
    assert meta["collector_version"] == "2.3.4"
    assert meta["source"] == f"class:{Ok.__module__}.Ok"


def test_the_harvester_version_can_be_given():
    assert harvest([Ok], harvester_version="9.9.9")["harvester"]["harvester-version"] == "9.9.9"


def test_a_collector_returning_meta_and_data_is_not_unwrapped(validate_document):
    document = harvest([Wrapped])
    validate_document(document)

    wrapped = entry(document, "wrapped")
    assert wrapped["data"] == Wrapped.RETURNED
    assert set(wrapped) == {"meta", "data"}
    assert wrapped["meta"]["status"] == "success"
    assert wrapped["data"]["meta"] == Wrapped.RETURNED["meta"]  # its own key, not the framework's meta
    assert "meta" not in wrapped["data"]["data"]


def test_every_produced_document_validates(validate_document, release):
    everything = [Ok, Partial, PartialResult, Failed, Crashes, Exits, WithSchema, counting("stuck", release)]
    document = harvest(everything, validate=False)
    validate_document(document)
    assert {e["meta"]["status"] for e in document["collectors"].values()} == {"success", "partial", "failed", "timeout"}


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ([Ok, FullResult], "success"),
        ([Ok, Failed], "partial"),
        ([Partial], "partial"),
        ([Failed, Crashes], "failed"),
    ],
)
def test_overall_status(classes, expected):
    assert overall_status(harvest(classes)) == expected


def test_overall_status_counts_a_timeout_as_failed(release):
    assert overall_status(harvest([Failed, counting("stuck", release)])) == "failed"
    assert overall_status(harvest([Ok, counting("stuck-too", release)])) == "partial"

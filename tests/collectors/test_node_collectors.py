"""What ``substrate`` and ``evm`` share: a node that is down, hangs or stops answering, credentials,
options, process detection, and a run through the real command."""

from __future__ import annotations

import base64
import json
import time

import pytest

from dwellir_harvester.collectors.evm import EvmCollector
from dwellir_harvester.collectors.substrate import SubstrateCollector
from dwellir_harvester.lib import CollectorOptionError
from dwellir_harvester.lib.testing import run_collector

COLLECTORS = {"substrate": SubstrateCollector, "evm": EvmCollector}
FIRST_CALL = {"substrate": "system_name", "evm": "web3_clientVersion"}
both = pytest.mark.parametrize("name", sorted(COLLECTORS))


@both
def test_a_node_that_is_down_fails_at_once_naming_the_url_and_the_error(name, closed_port):
    url = f"http://127.0.0.1:{closed_port}"
    started = time.monotonic()

    entry = run_collector(COLLECTORS[name], {"rpc_url": url, "rpc_timeout": 5})

    assert time.monotonic() - started < 2
    assert entry["meta"]["status"] == "failed", entry
    assert entry["data"] == {}
    [error] = entry["meta"]["errors"]
    assert url in error
    assert "connection refused" in error
    assert FIRST_CALL[name] in error


@both
def test_a_node_that_never_answers_fails_after_one_rpc_timeout(name, rpc_server):
    rpc_server.on(FIRST_CALL[name], hang=True)
    started = time.monotonic()

    entry = run_collector(COLLECTORS[name], {"rpc_url": rpc_server.url, "rpc_timeout": 0.3})

    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5, elapsed
    assert entry["meta"]["status"] == "failed", entry
    [error] = entry["meta"]["errors"]
    assert rpc_server.url in error
    assert "no answer within 0.3 s" in error
    assert rpc_server.methods() == [FIRST_CALL[name]]  # nothing else was tried


@both
def test_a_node_that_stops_answering_midway_skips_the_remaining_calls(name, rpc_server, node_scripts):
    script = node_scripts[name]
    rpc_server.script(script)
    methods = list(script)
    hung = methods[-3]
    rpc_server.on(hung, hang=True)
    started = time.monotonic()

    entry = run_collector(COLLECTORS[name], {"rpc_url": rpc_server.url, "rpc_timeout": 0.3})

    assert time.monotonic() - started < 1.5
    assert entry["meta"]["status"] == "partial", entry
    errors = entry["meta"]["errors"]
    assert len(errors) == 3, errors
    assert hung in errors[0] and "no answer within 0.3 s" in errors[0]
    for skipped, error in zip(methods[-2:], errors[1:], strict=True):
        assert error.startswith(f"{skipped}: not called")
        assert rpc_server.url in error
    assert rpc_server.methods() == methods[:-2]
    assert entry["data"]["workload"]["client_name"]


@both
def test_a_port_that_does_not_speak_http_fails_naming_the_url(name, raw_server):
    url = raw_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n"))

    entry = run_collector(COLLECTORS[name], {"rpc_url": url})

    assert entry["meta"]["status"] == "failed", entry
    [error] = entry["meta"]["errors"]
    assert url in error and FIRST_CALL[name] in error and "SSH-2.0" in error


@both
def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_reported(name, rpc_server, node_scripts):
    rpc_server.script(node_scripts[name])
    url = rpc_server.url.replace("http://", "http://harvester:S3cr3t-pw@") + "/?apikey=S3cr3t-key&chain=main"

    entry = run_collector(COLLECTORS[name], {"rpc_url": url})

    assert entry["meta"]["status"] == "success", entry
    expected = "Basic " + base64.b64encode(b"harvester:S3cr3t-pw").decode()
    assert {r.headers.get("Authorization") for r in rpc_server.requests} == {expected}
    assert (
        entry["data"]["rpc_url"]
        == rpc_server.url.replace("http://", "http://<redacted>@") + "/?apikey=<redacted>&chain=main"
    )
    assert "S3cr3t" not in json.dumps(entry)


@both
def test_credentials_never_show_in_failure_messages(name, closed_port):
    url = f"http://harvester:S3cr3t@127.0.0.1:{closed_port}"

    entry = run_collector(COLLECTORS[name], {"rpc_url": url})

    assert entry["meta"]["status"] == "failed", entry
    assert "S3cr3t" not in json.dumps(entry)


@both
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rpc_url": "ws://127.0.0.1:9944"}, "rpc_url must be an http:// or https:// URL"),
        ({"rpc_url": "htp://alice:S3cr3t@127.0.0.1:9944"}, "rpc_url must be an http:// or https:// URL"),
        ({"rpc_url": "http://alice:S3cr3t@127.0.0.1:port"}, "is not a valid URL"),
        ({"rpc_url": 9944}, "rpc_url must be a string"),
        ({"rpc_timeout": 0}, "rpc_timeout must be a positive number"),
        ({"rpc_timeout": "2"}, "rpc_timeout must be a positive number"),
        ({"ecosystem": ""}, "ecosystem must be a non-empty string"),
        ({"process_name": ""}, "process_name must be a non-empty string"),
    ],
)
def test_bad_option_values_fail_with_a_clear_message(name, options, message):
    entry = run_collector(COLLECTORS[name], options)

    assert entry["meta"]["status"] == "failed", entry
    [error] = entry["meta"]["errors"]
    assert "could not create the collector" in error and message in error
    assert "S3cr3t" not in error


@both
def test_an_unknown_option_is_an_error_not_a_silent_default(name):
    with pytest.raises(CollectorOptionError, match="rpc_ulr"):
        run_collector(COLLECTORS[name], {"rpc_ulr": "http://127.0.0.1:1"})


@both
def test_a_process_name_that_matches_nothing_makes_it_partial(name, rpc_server, node_scripts):
    rpc_server.script(node_scripts[name])

    entry = run_collector(COLLECTORS[name], {"rpc_url": rpc_server.url, "process_name": "no-such-node-x9"})

    assert entry["meta"]["status"] == "partial", entry
    assert entry["meta"]["errors"] == ["no running process named 'no-such-node-x9'"]
    assert "binary_path" not in entry["data"]["workload"]
    assert entry["data"]["workload"]["client_name"]


def test_substrate_end_to_end_through_the_command(run_cli, polkadot_node, validate_document):
    result = run_cli("collect", "substrate", "--option", f"substrate.rpc_url={polkadot_node.url}")

    assert result.returncode == 0, result
    document = result.json()
    validate_document(document)
    entry = document["collectors"]["substrate"]
    assert entry["meta"]["status"] == "success"
    assert entry["meta"]["source"] == "builtin:dwellir_harvester.collectors.substrate"
    assert entry["data"]["blockchain"]["blockchain_network_name"] == "Polkadot"
    assert entry["data"]["peers"] == 40


def test_evm_node_down_through_the_command_exits_1(run_cli, closed_port, validate_document):
    url = f"http://127.0.0.1:{closed_port}"

    result = run_cli("collect", "evm", "--option", f"evm.rpc_url={url}", "--option", "evm.rpc_timeout=0.5")

    assert result.returncode == 1, result
    document = result.json()
    validate_document(document)
    entry = document["collectors"]["evm"]
    assert entry["meta"]["status"] == "failed"
    assert url in entry["meta"]["errors"][0]


@pytest.mark.parametrize(
    "absurd",
    ["0x" + "f" * 100_000, "0x" + "1" + "0" * 64, 10**100, 2**256],
    ids=["100k-hex-digits", "257-bits-hex", "googol", "2**256"],
)
def test_an_absurd_quantity_is_a_bad_field_and_the_rest_is_kept(rpc_server, node_scripts, absurd):
    script = node_scripts["evm"]
    script["eth_blockNumber"] = absurd
    rpc_server.script(script)

    entry = run_collector(EvmCollector, {"rpc_url": rpc_server.url})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert "eth_blockNumber" in error and "larger than 2**256" in error and len(error) < 300
    assert entry["data"]["workload"]["client_name"] == "Geth"
    assert "best_block" not in entry["data"]["sync"]
    json.dumps(entry)

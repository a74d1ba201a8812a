"""``substrate`` against a real JSON-RPC server answering like a Polkadot mainnet node."""

from __future__ import annotations

import json
import os
import sys

from dwellir_harvester.collectors.substrate import SubstrateCollector
from dwellir_harvester.lib.testing import run_collector
from tests.support import GENESIS


def test_a_synced_polkadot_node(polkadot_node):
    entry = run_collector(SubstrateCollector, {"rpc_url": polkadot_node.url})

    assert entry["meta"]["status"] == "success", entry
    assert entry["meta"]["collector_type"] == "blockchain"
    assert entry["meta"]["errors"] == []
    assert entry["data"] == {
        "blockchain": {
            "blockchain_ecosystem": "polkadot",
            "blockchain_network_name": "Polkadot",
            "chain_id": GENESIS,
            "genesis_hash": GENESIS,
        },
        "workload": {"client_name": "Parity Polkadot", "client_version": "1.15.2-2fe4a1e1e9f"},
        "sync": {
            "syncing": False,
            "best_block": 22678316,
            "current_block": 22678316,
            "highest_block": 22678316,
            "starting_block": 22675120,
        },
        "peers": 40,
        "rpc_url": polkadot_node.url,
    }
    genesis_request = next(r for r in polkadot_node.requests if r.method == "chain_getBlockHash")
    assert genesis_request.params == [0]
    assert genesis_request.body["jsonrpc"] == "2.0"


def test_defaults_match_a_local_polkadot_node():
    collector = SubstrateCollector()
    assert collector.rpc_url == "http://127.0.0.1:9944"
    assert collector.ecosystem == "polkadot"
    assert collector.process_name is None
    assert collector.rpc_timeout == 2.0
    assert 5 <= SubstrateCollector.TIMEOUT <= 15


def test_a_syncing_node_and_another_ecosystem(polkadot_node):
    polkadot_node.on("system_chain", "Kusama")
    polkadot_node.on("system_health", {"peers": 3, "isSyncing": True, "shouldHavePeers": True})
    polkadot_node.on("chain_getHeader", {"number": "0x1f4", "parentHash": "0x00"})
    polkadot_node.on("system_syncState", {"startingBlock": 0, "currentBlock": 500, "highestBlock": 25800000})

    entry = run_collector(SubstrateCollector, {"rpc_url": polkadot_node.url, "ecosystem": "kusama"})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["blockchain"]["blockchain_ecosystem"] == "kusama"
    assert entry["data"]["blockchain"]["blockchain_network_name"] == "Kusama"
    assert entry["data"]["sync"] == {
        "syncing": True,
        "best_block": 500,
        "current_block": 500,
        "highest_block": 25800000,
        "starting_block": 0,
    }
    assert entry["data"]["peers"] == 3


def test_failed_calls_make_it_partial_with_one_message_each_and_keep_the_rest(polkadot_node):
    polkadot_node.on("system_syncState", error={"code": -32601, "message": "Method not found"})
    polkadot_node.on("chain_getHeader", status=500, body="Internal Server Error")
    polkadot_node.on("system_health", body="<html><body>502 Bad Gateway</body></html>")

    entry = run_collector(SubstrateCollector, {"rpc_url": polkadot_node.url})

    assert entry["meta"]["status"] == "partial", entry
    errors = entry["meta"]["errors"]
    assert len(errors) == 3, errors
    url = polkadot_node.url
    assert any("system_syncState" in e and url in e and "-32601" in e and "Method not found" in e for e in errors)
    assert any("chain_getHeader" in e and url in e and "500" in e for e in errors)
    assert any("system_health" in e and url in e and "not a JSON-RPC response" in e for e in errors)
    data = entry["data"]
    assert data["blockchain"]["chain_id"] == GENESIS
    assert data["workload"] == {"client_name": "Parity Polkadot", "client_version": "1.15.2-2fe4a1e1e9f"}
    assert data["sync"] == {}
    assert "peers" not in data


def test_an_unexpected_result_is_one_message(polkadot_node):
    polkadot_node.on("system_health", "healthy")
    polkadot_node.on("chain_getBlockHash", "0x1234")

    entry = run_collector(SubstrateCollector, {"rpc_url": polkadot_node.url})

    assert entry["meta"]["status"] == "failed", entry  # the chain id is required
    errors = entry["meta"]["errors"]
    assert any("system_health" in e and "unexpected result" in e and '"healthy"' in e for e in errors)
    assert any("chain_getBlockHash" in e and "unexpected result" in e for e in errors)
    assert any("missing required fields: blockchain.chain_id" in e for e in errors)


def test_a_missing_required_field_fails_the_entry_and_names_it(polkadot_node):
    polkadot_node.on("system_chain", error={"code": -32601, "message": "Method not found"})
    polkadot_node.on("system_version", error={"code": -32000, "message": "Server busy"})

    entry = run_collector(SubstrateCollector, {"rpc_url": polkadot_node.url})

    assert entry["meta"]["status"] == "failed", entry
    errors = entry["meta"]["errors"]
    assert any("system_chain" in e and "Method not found" in e for e in errors)
    assert any("system_version" in e and "Server busy" in e for e in errors)
    assert any(
        "missing required fields" in e and "blockchain.blockchain_network_name" in e and "workload.client_version" in e
        for e in errors
    )


def test_the_secret_of_a_node_process_never_shows(polkadot_node, node_process):
    node = node_process("--chain", "polkadot", "--rpc-api-key=SECRET-api-key-1", "--password", "SECRET-pass-2")

    entry = run_collector(SubstrateCollector, {"rpc_url": polkadot_node.url, "process_name": node.name})

    assert entry["meta"]["status"] == "success", entry
    workload = entry["data"]["workload"]
    assert workload["client_name"] == "Parity Polkadot"
    assert workload["command_line"][1:] == [
        "-c",
        "import time; time.sleep(30)",
        "--chain",
        "polkadot",
        "--rpc-api-key=<redacted>",
        "--password",
        "<redacted>",
    ]
    assert workload["command_line"][0].endswith(node.name)
    assert workload["binary_path"] == os.path.realpath(sys.executable)
    assert "SECRET" not in json.dumps(entry)

"""``evm`` against a real JSON-RPC server answering like a Geth node on Ethereum mainnet."""

from __future__ import annotations

import json

import pytest

from dwellir_harvester.collectors.evm import EvmCollector, network_name, parse_client_version
from dwellir_harvester.lib.testing import run_collector


def test_a_synced_geth_node_on_mainnet(ethereum_node):
    entry = run_collector(EvmCollector, {"rpc_url": ethereum_node.url})

    assert entry["meta"]["status"] == "success", entry
    assert entry["meta"]["collector_type"] == "blockchain"
    assert entry["data"] == {
        "blockchain": {
            "blockchain_ecosystem": "ethereum",
            "blockchain_network_name": "mainnet",
            "chain_id": 1,
            "network_id": "1",
        },
        "workload": {"client_name": "Geth", "client_version": "v1.14.8-stable-a9523b64"},
        "sync": {"syncing": False, "best_block": 21658687},
        "peers": 50,
        "rpc_url": ethereum_node.url,
    }
    assert ethereum_node.methods() == [
        "web3_clientVersion",
        "eth_chainId",
        "net_version",
        "eth_syncing",
        "eth_blockNumber",
        "net_peerCount",
    ]


def test_defaults_match_a_local_ethereum_node():
    collector = EvmCollector()
    assert collector.rpc_url == "http://127.0.0.1:8545"
    assert collector.ecosystem == "ethereum"
    assert collector.process_name is None
    assert collector.rpc_timeout == 2.0


@pytest.mark.parametrize(
    ("version_string", "name", "version"),
    [
        ("Geth/v1.14.8-stable-a9523b64/linux-amd64/go1.22.6", "Geth", "v1.14.8-stable-a9523b64"),
        ("Geth/my-node-01/v1.14.8-stable-a9523b64/linux-amd64/go1.22.6", "Geth", "v1.14.8-stable-a9523b64"),
        ("erigon/2.60.1/linux-amd64/go1.22", "erigon", "2.60.1"),
        ("reth/v1.0.3-390f30aa/x86_64-unknown-linux-gnu", "reth", "v1.0.3-390f30aa"),
        ("Nethermind/v1.27.0+220b5b85/linux-x64/dotnet8.0.6", "Nethermind", "v1.27.0+220b5b85"),
        ("besu/v24.7.0/linux-x86_64/openjdk-java-21", "besu", "v24.7.0"),
        ("bor/v1.3.7/linux-amd64/go1.22.1", "bor", "v1.3.7"),
        ("anvil/unreleased", "anvil", "unreleased"),
        ("SomeClient", "SomeClient", "unknown"),
    ],
)
def test_client_version_strings(version_string, name, version):
    assert parse_client_version(version_string) == (name, version)


@pytest.mark.parametrize("bad", ["", "   ", "/v1.0.0", 42, None])
def test_a_client_version_that_names_no_client_is_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        parse_client_version(bad)


@pytest.mark.parametrize(
    ("chain_id", "name"),
    [
        ("0x1", "mainnet"),
        ("0xaa36a7", "sepolia"),
        ("0x4268", "holesky"),
        ("0xa", "optimism"),
        ("0x2105", "base"),
        ("0xa4b1", "arbitrum-one"),
        ("0x89", "polygon"),
        ("0x539", "chain-1337"),
    ],
)
def test_network_names_from_the_chain_id(ethereum_node, chain_id, name):
    ethereum_node.on("eth_chainId", chain_id)
    ethereum_node.on("net_version", str(int(chain_id, 16)))

    entry = run_collector(EvmCollector, {"rpc_url": ethereum_node.url})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["blockchain"]["blockchain_network_name"] == name
    assert entry["data"]["blockchain"]["chain_id"] == int(chain_id, 16)
    assert network_name(int(chain_id, 16)) == name


def test_a_syncing_node_reports_its_progress(ethereum_node):
    ethereum_node.on("web3_clientVersion", "erigon/2.60.1/linux-amd64/go1.22")
    ethereum_node.on(
        "eth_syncing",
        {"startingBlock": "0x0", "currentBlock": "0x1312d00", "highestBlock": "0x14a7c3f", "stages": []},
    )
    ethereum_node.on("eth_blockNumber", "0x1312d00")

    entry = run_collector(EvmCollector, {"rpc_url": ethereum_node.url})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["workload"] == {"client_name": "erigon", "client_version": "2.60.1"}
    assert entry["data"]["sync"] == {
        "syncing": True,
        "current_block": 20000000,
        "highest_block": 21658687,
        "starting_block": 0,
        "best_block": 20000000,
    }


def test_failed_calls_make_it_partial_with_one_message_each(ethereum_node):
    ethereum_node.on("net_peerCount", error={"code": -32601, "message": "the method net_peerCount does not exist"})
    ethereum_node.on("eth_syncing", status=500, body="upstream error")
    ethereum_node.on("net_version", body="not json at all")

    entry = run_collector(EvmCollector, {"rpc_url": ethereum_node.url})

    assert entry["meta"]["status"] == "partial", entry
    errors = entry["meta"]["errors"]
    assert len(errors) == 3, errors
    assert any("net_peerCount" in e and "-32601" in e and ethereum_node.url in e for e in errors)
    assert any("eth_syncing" in e and "HTTP 500" in e for e in errors)
    assert any("net_version" in e and "not a JSON-RPC response" in e for e in errors)
    data = entry["data"]
    assert data["blockchain"] == {
        "blockchain_ecosystem": "ethereum",
        "blockchain_network_name": "mainnet",
        "chain_id": 1,
    }
    assert data["sync"] == {"best_block": 21658687}
    assert "peers" not in data


def test_without_a_chain_id_the_entry_fails_naming_the_fields(ethereum_node):
    ethereum_node.on("eth_chainId", error={"code": -32601, "message": "Method not found"})

    entry = run_collector(EvmCollector, {"rpc_url": ethereum_node.url})

    assert entry["meta"]["status"] == "failed", entry
    errors = entry["meta"]["errors"]
    assert any("eth_chainId" in e and "Method not found" in e for e in errors)
    assert any("blockchain.blockchain_network_name" in e and "blockchain.chain_id" in e for e in errors)


def test_the_password_of_a_node_process_never_shows(ethereum_node, node_process):
    node = node_process("--http", "--password", "SECRET-pw", "--authrpc.jwtsecret=/SECRET/jwt.hex")

    entry = run_collector(EvmCollector, {"rpc_url": ethereum_node.url, "process_name": node.name})

    assert entry["meta"]["status"] == "success", entry
    command_line = entry["data"]["workload"]["command_line"]
    assert command_line[-4:] == ["--http", "--password", "<redacted>", "--authrpc.jwtsecret=<redacted>"]
    assert "SECRET" not in json.dumps(entry)

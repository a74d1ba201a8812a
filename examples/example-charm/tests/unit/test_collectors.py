"""The charm's two collectors, on their own: through the SDK's harness and from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dwellir_harvester.lib.run import load_collector_class
from dwellir_harvester.lib.testing import run_collector

COLLECTORS = Path(__file__).resolve().parents[2] / "collectors"


def collector(target: str):
    return load_collector_class(target, [str(COLLECTORS)])


# --- unit-facts --------------------------------------------------------------------------------


def test_unit_facts_reports_its_options():
    facts = {"application": "harvester-example", "unit": "harvester-example/0", "model": "prod", "charm": "x"}
    entry = run_collector(collector("unit_facts:UnitFactsCollector"), options={**facts, "config": {"port": 1}})

    assert entry["meta"]["status"] == "success"
    assert entry["data"] == {**facts, "model_uuid": "", "config": {"port": 1}}


def test_unit_facts_never_reports_a_secret_whatever_it_is_given():
    config = {
        "api-key": "k-123",
        "db-password": "p-123",
        "rpc-url": "https://user:p-456@node.example/?token=t-789",
        "cert": "-----BEGIN PRIVATE KEY-----\nc-321\n-----END PRIVATE KEY-----",
        "port": 18080,
    }
    entry = run_collector(collector("unit_facts:UnitFactsCollector"), options={"config": config})

    shown = json.dumps(entry)
    for secret in ("k-123", "p-123", "p-456", "t-789", "c-321"):
        assert secret not in shown
    assert entry["data"]["config"]["port"] == 18080


def test_unit_facts_refuses_options_of_the_wrong_type():
    entry = run_collector(collector("unit_facts:UnitFactsCollector"), options={"config": ["port"]})

    assert entry["meta"]["status"] == "failed"
    assert entry["meta"]["errors"] == ["option config must be a mapping, not list"]


# --- polkadot ----------------------------------------------------------------------------------


def test_polkadot_reports_the_node_as_a_blockchain_collector(node, kit):
    entry = run_collector(collector("polkadot:PolkadotCollector"), options={"rpc_url": node.url})

    assert entry["meta"]["status"] == "success"
    assert entry["meta"]["collector_type"] == "blockchain"
    assert entry["data"] == {
        "blockchain": {
            "blockchain_ecosystem": "polkadot",
            "blockchain_network_name": "Polkadot",
            "chain_id": kit.GENESIS,
            "genesis_hash": kit.GENESIS,
        },
        "workload": {"client_name": "Parity Polkadot", "client_version": "1.16.2-4bd2b73c0d3"},
        "health": {"peers": 42, "is_syncing": False, "should_have_peers": True},
        "rpc_url": node.url,
    }
    assert node.calls == ["system_name", "system_version", "system_chain", "chain_getBlockHash", "system_health"]


def test_polkadot_without_health_is_partial(node):
    del node.answers["system_health"]
    entry = run_collector(collector("polkadot:PolkadotCollector"), options={"rpc_url": node.url})

    assert entry["meta"]["status"] == "partial"
    assert entry["meta"]["errors"] == [f"health unavailable: system_health at {node.url}: error -32601: no such"]
    assert "health" not in entry["data"]
    assert entry["data"]["workload"]["client_name"] == "Parity Polkadot"


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ({"system_chain": ""}, "system_chain returned '', not a non-empty string"),
        ({"chain_getBlockHash": "0x12"}, "chain_getBlockHash [0] returned '0x12', not a block hash"),
        ({"system_health": {"peers": "many", "isSyncing": False}}, "system_health returned an unexpected answer"),
    ],
)
def test_polkadot_reports_what_the_node_got_wrong(node, answers, error):
    node.answers.update(answers)
    entry = run_collector(collector("polkadot:PolkadotCollector"), options={"rpc_url": node.url})

    assert entry["meta"]["status"] in ("failed", "partial")
    assert entry["meta"]["errors"][0].startswith(error)


def test_polkadot_fails_cleanly_without_a_node():
    entry = run_collector(collector("polkadot:PolkadotCollector"), options={"rpc_url": "http://127.0.0.1:9"})

    assert entry["meta"]["status"] == "failed"
    assert entry["meta"]["errors"][0].startswith("system_name at http://127.0.0.1:9: ")


def test_polkadot_never_shows_credentials_of_its_url(node):
    url = node.url.replace("http://", "http://admin:hunter2@")
    entry = run_collector(collector("polkadot:PolkadotCollector"), options={"rpc_url": url})

    assert entry["meta"]["status"] == "success"
    assert "hunter2" not in json.dumps(entry)


def test_runs_standalone_with_the_sdks_runner(node):
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "dwellir_harvester.lib.run", "polkadot:PolkadotCollector"),
            *("--collector-path", str(COLLECTORS), "--option", f"rpc_url={node.url}"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)
    assert entry["meta"]["collector_name"] == "polkadot"
    assert entry["data"]["blockchain"]["blockchain_network_name"] == "Polkadot"

"""``/metrics``: one node_info sample per blockchain entry, its labels escaped, and the sinks' gauges."""

from __future__ import annotations

CHAIN_PLUGIN = """
from dwellir_harvester.lib import BlockchainCollector

class Chain(BlockchainCollector):
    NAME = "chain"
    VERSION = "1.0.0"

    def collect(self):
        return {
            "blockchain": {"blockchain_ecosystem": "polkadot", "blockchain_network_name": 'net "main"\\\\x\\nnext',
                           "chain_id": "0x91b1"},
            "workload": {"client_name": "polkadot", "client_version": "1.2.3"},
        }

class Evm(BlockchainCollector):
    NAME = "evm-node"
    VERSION = "1.0.0"

    def collect(self):
        return {
            "blockchain": {"blockchain_ecosystem": "ethereum", "blockchain_network_name": "mainnet", "chain_id": 1},
            "workload": {"client_name": "geth", "client_version": "1.14.0"},
        }
"""


def test_node_info_per_blockchain_entry_and_sink_gauges(start_daemon, tmp_path):
    plugins = tmp_path / "chains"
    plugins.mkdir()
    (plugins / "chains.py").write_text(CHAIN_PLUGIN)
    daemon = start_daemon(
        {
            "collectors": ["chain", "evm-node", "null"],
            "collector_paths": [str(plugins)],
            "spool_dir": str(tmp_path / "spool"),
            "sinks": [{"type": "file", "directory": str(tmp_path / "out")}],
        }
    )
    daemon.wait(lambda: daemon.sink("sent_total", "file") >= 1, what="a delivery")
    metrics = daemon.metrics()
    info = {labels: value for (name, labels), value in metrics.items() if name == "dwellir_harvester_node_info"}
    assert info == {
        (
            ("chain_id", "0x91b1"),
            ("client_name", "polkadot"),
            ("client_version", "1.2.3"),
            ("network", 'net "main"\\x next'),
        ): 1.0,
        (("chain_id", "1"), ("client_name", "geth"), ("client_version", "1.14.0"), ("network", "mainnet")): 1.0,
    }
    for metric in (
        "sent_total",
        "failed_total",
        "dropped_total",
        "spooled",
        "oldest_spooled_age_seconds",
        "last_success_timestamp_seconds",
    ):
        assert (f"dwellir_harvester_sink_{metric}", (("sink", "file"),)) in metrics, metric
    assert daemon.stop() == 0

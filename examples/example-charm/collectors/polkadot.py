"""``polkadot``: a Substrate/Polkadot node over JSON-RPC, as a ``BlockchainCollector``.

Option ``rpc_url`` (the charm passes its ``rpc-url`` config), ``ecosystem`` (default
``polkadot``) and ``rpc_timeout`` (seconds per call, default 2)::

    python -m dwellir_harvester.lib.run polkadot:PolkadotCollector --collector-path collectors \\
        --option rpc_url=http://127.0.0.1:9944

Data::

    {"blockchain": {"blockchain_ecosystem": "polkadot", "blockchain_network_name": "Polkadot",
                    "chain_id": "0x91b1…", "genesis_hash": "0x91b1…"},
     "workload": {"client_name": "Parity Polkadot", "client_version": "1.16.2-…"},
     "health": {"peers": 40, "is_syncing": false, "should_have_peers": true},
     "rpc_url": "http://127.0.0.1:9944"}

The chain id is the genesis block's hash (``chain_getBlockHash [0]``). A node that does not answer
the identity calls fails the collector, with the URL and the method; ``system_health`` failing
alone keeps the rest (status ``partial``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from dwellir_harvester.lib import BlockchainCollector, CollectorFailedError, CollectorPartialError
from dwellir_harvester.lib.jsonrpc import JsonRpcError, jsonrpc_call
from dwellir_harvester.lib.redact import redact_url

_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _text(method: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CollectorFailedError(f"{method} returned {value!r}, not a non-empty string")
    return value.strip()


class PolkadotCollector(BlockchainCollector):
    """The node's client, chain and genesis hash, and its health (peers, syncing)."""

    NAME = "polkadot"
    VERSION = "1.0.0"
    TIMEOUT = 10.0
    SCHEMA = {
        "type": "object",
        "properties": {
            "blockchain": {
                "type": "object",
                "properties": {"chain_id": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}},
            },
            "health": {
                "type": "object",
                "properties": {
                    "peers": {"type": "integer", "minimum": 0},
                    "is_syncing": {"type": "boolean"},
                    "should_have_peers": {"type": "boolean"},
                },
                "required": ["peers", "is_syncing"],
            },
            "rpc_url": {"type": "string"},
        },
        "required": ["blockchain", "workload", "rpc_url"],
    }

    def __init__(self, rpc_url: str = "http://127.0.0.1:9944", ecosystem: str = "polkadot", rpc_timeout: float = 2.0):
        if not isinstance(rpc_url, str) or not rpc_url.startswith(("http://", "https://")):
            raise CollectorFailedError(f"option rpc_url must be an http:// or https:// URL, not {rpc_url!r}")
        if not isinstance(ecosystem, str) or not ecosystem:
            raise CollectorFailedError("option ecosystem must be a non-empty string")
        if isinstance(rpc_timeout, bool) or not isinstance(rpc_timeout, (int, float)) or not math.isfinite(rpc_timeout):
            raise CollectorFailedError(f"option rpc_timeout must be a number of seconds, not {rpc_timeout!r}")
        if rpc_timeout <= 0:
            raise CollectorFailedError(f"option rpc_timeout must be positive, not {rpc_timeout!r}")
        self.rpc_url, self.ecosystem, self.rpc_timeout = rpc_url, ecosystem, float(rpc_timeout)

    def _call(self, method: str, params: list[Any] | None = None) -> Any:
        return jsonrpc_call(self.rpc_url, method, params, timeout=self.rpc_timeout)

    def collect(self) -> dict[str, Any]:
        client_name = _text("system_name", self._call("system_name"))
        client_version = _text("system_version", self._call("system_version"))
        chain = _text("system_chain", self._call("system_chain"))
        genesis = self._call("chain_getBlockHash", [0])
        if not isinstance(genesis, str) or not _HASH.match(genesis):
            raise CollectorFailedError(f"chain_getBlockHash [0] returned {genesis!r}, not a block hash")
        data: dict[str, Any] = {
            "blockchain": {
                "blockchain_ecosystem": self.ecosystem,
                "blockchain_network_name": chain,
                "chain_id": genesis.lower(),
                "genesis_hash": genesis.lower(),
            },
            "workload": {"client_name": client_name, "client_version": client_version},
            "rpc_url": redact_url(self.rpc_url),
        }
        try:
            health = self._call("system_health")
        except JsonRpcError as err:
            raise CollectorPartialError(f"health unavailable: {err}", data=data) from err
        peers = health.get("peers") if isinstance(health, dict) else None
        syncing = health.get("isSyncing") if isinstance(health, dict) else None
        if isinstance(peers, bool) or not isinstance(peers, int) or not isinstance(syncing, bool):
            raise CollectorPartialError(f"system_health returned an unexpected answer: {health!r}", data=data)
        data["health"] = {"peers": peers, "is_syncing": syncing}
        if isinstance(health.get("shouldHavePeers"), bool):
            data["health"]["should_have_peers"] = health["shouldHavePeers"]
        return data

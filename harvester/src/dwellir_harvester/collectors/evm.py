"""``evm``: an Ethereum-compatible execution client (Geth, Erigon, Reth, Nethermind, Besu, …) over JSON-RPC.

Options: ``rpc_url`` (default ``http://127.0.0.1:8545``), ``process_name`` (find the node's process
and report its binary and command line, secrets redacted), ``ecosystem`` (default ``ethereum``) and
``rpc_timeout`` (seconds per call, default 2).

Data::

    {"blockchain": {"blockchain_ecosystem": "ethereum", "blockchain_network_name": "mainnet",
                    "chain_id": 1, "network_id": "1"},
     "workload": {"client_name": "Geth", "client_version": "v1.14.8-stable-a9523b64",
                  "binary_path": "/usr/bin/geth", "command_line": ["geth", "--http", …]},
     "sync": {"syncing": false, "best_block": 21658687},
     "peers": 50,
     "rpc_url": "http://127.0.0.1:8545"}

While the node syncs, ``sync`` also holds ``current_block``, ``highest_block`` and
``starting_block`` from ``eth_syncing``. The network name comes from the chain id (``mainnet``,
``sepolia``, ``holesky``, ``optimism``, ``base``, ``arbitrum-one``, ``polygon``; ``chain-<id>``
otherwise). A call that fails is left out of the data with one message (status ``partial``); a node
that cannot be reached at all fails the collector at once.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from dwellir_harvester.lib.redact import redact_url

from ._chain import (
    NodeCollector,
    RpcSession,
    compact,
    finish,
    node_schema,
    process_facts,
    quantity,
    text,
)

#: Well-known chain ids and the network names reported for them.
NETWORKS: dict[int, str] = {
    1: "mainnet",
    10: "optimism",
    137: "polygon",
    8453: "base",
    17000: "holesky",
    42161: "arbitrum-one",
    11155111: "sepolia",
}

_VERSION = re.compile(r"^v?\d+(?:\.\d+)+")


class ClientVersion(NamedTuple):
    """A client's name and version, parsed from ``web3_clientVersion``."""

    name: str
    version: str


def parse_client_version(value: Any) -> ClientVersion:
    """Split ``web3_clientVersion`` into client name and version.

    ``Geth/v1.14.8-stable-a9523b64/linux-amd64/go1.22.6`` → ``Geth``, ``v1.14.8-stable-a9523b64``;
    a Geth node with an identity (``Geth/my-node/v1.14.8-stable/…``) too; ``erigon/2.60.1/…``,
    ``reth/v1.0.3-…/…``, ``Nethermind/v1.27.0+…/…`` and ``besu/v24.7.0/…`` alike. A string that
    holds no version keeps its second part (or ``unknown``) as the version.
    """
    parts = [part.strip() for part in text(value).split("/")]
    name = parts[0]
    if not name:
        raise ValueError("no client name")
    version = next((part for part in parts[1:] if _VERSION.match(part)), None)
    if version is None:
        version = parts[1] if len(parts) > 1 and parts[1] else "unknown"
    return ClientVersion(name, version)


def network_name(chain_id: int) -> str:
    """The network name of a chain id: a well-known name or ``chain-<id>``."""
    return NETWORKS.get(chain_id, f"chain-{chain_id}")


def _syncing(value: Any) -> dict[str, Any]:
    if value is False:
        return {"syncing": False}
    if not isinstance(value, dict):
        raise TypeError("expected false or an object")
    fields = {"current_block": "currentBlock", "highest_block": "highestBlock", "starting_block": "startingBlock"}
    progress = {ours: quantity(value[theirs]) for ours, theirs in fields.items() if value.get(theirs) is not None}
    return {"syncing": True, **progress}


class EvmCollector(NodeCollector):
    """Identity, sync state and peers of an EVM execution client, from its JSON-RPC API."""

    NAME = "evm"
    VERSION = "1.0.0"
    DEFAULT_RPC_URL = "http://127.0.0.1:8545"
    DEFAULT_ECOSYSTEM = "ethereum"
    SCHEMA = node_schema({"type": "integer", "minimum": 0})

    def collect(self) -> dict[str, Any]:
        """Collect this collector's data (see the module docstring)."""
        rpc = RpcSession(self.rpc_url, self.rpc_timeout)
        client = rpc.call("web3_clientVersion", parse_client_version)
        chain_id = rpc.call("eth_chainId", quantity)
        network_id = rpc.call("net_version", text)
        sync = rpc.call("eth_syncing", _syncing) or {}
        best = rpc.call("eth_blockNumber", quantity)
        peers = rpc.call("net_peerCount", quantity)
        errors = rpc.errors

        workload: dict[str, Any] = {}
        if client is not None:
            workload = {"client_name": client.name, "client_version": client.version}
        if self.process_name is not None:
            facts, problems = process_facts(self.process_name)
            workload.update(facts)
            errors += problems
        data = {
            "blockchain": compact(
                {
                    "blockchain_ecosystem": self.ecosystem,
                    "blockchain_network_name": None if chain_id is None else network_name(chain_id),
                    "chain_id": chain_id,
                    "network_id": network_id,
                }
            ),
            "workload": workload,
            "sync": compact({**sync, "best_block": best}),
            **compact({"peers": peers}),
            "rpc_url": redact_url(self.rpc_url),
        }
        return finish(data, errors)

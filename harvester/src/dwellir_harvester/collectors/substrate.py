"""``substrate``: a Substrate node (Polkadot, Kusama, parachains) over JSON-RPC.

Options: ``rpc_url`` (default ``http://127.0.0.1:9944``), ``process_name`` (find the node's process
and report its binary and command line, secrets redacted), ``ecosystem`` (default ``polkadot``) and
``rpc_timeout`` (seconds per call, default 2).

Data::

    {"blockchain": {"blockchain_ecosystem": "polkadot", "blockchain_network_name": "Polkadot",
                    "chain_id": "0x91b1…", "genesis_hash": "0x91b1…"},
     "workload": {"client_name": "Parity Polkadot", "client_version": "1.15.2-2fe4a1e1e9f",
                  "binary_path": "/usr/bin/polkadot", "command_line": ["polkadot", "--chain", …]},
     "sync": {"syncing": false, "best_block": 22678316, "current_block": …, "highest_block": …,
              "starting_block": …},
     "peers": 40,
     "rpc_url": "http://127.0.0.1:9944"}

The chain id is the genesis block's hash. A call that fails is left out of the data with one message
(status ``partial``); a node that cannot be reached at all fails the collector at once.
"""

from __future__ import annotations

import re
from typing import Any

from dwellir_harvester.lib.redact import redact_url

from ._chain import (
    NodeCollector,
    RpcSession,
    boolean,
    compact,
    finish,
    node_schema,
    process_facts,
    quantity,
    text,
)

_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _block_hash(value: Any) -> str:
    if not isinstance(value, str) or not _HASH.match(value):
        raise ValueError("expected a 0x-prefixed 32-byte hash")
    return value.lower()


def _health(value: Any) -> tuple[int, bool]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return quantity(value["peers"]), boolean(value["isSyncing"])


def _header_number(value: Any) -> int:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return quantity(value["number"])


def _sync_state(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    fields = {"current_block": "currentBlock", "highest_block": "highestBlock", "starting_block": "startingBlock"}
    return {ours: quantity(value[theirs]) for ours, theirs in fields.items() if value.get(theirs) is not None}


class SubstrateCollector(NodeCollector):
    """Identity, sync state and peers of a Substrate node, from its JSON-RPC API."""

    NAME = "substrate"
    VERSION = "1.0.0"
    DEFAULT_RPC_URL = "http://127.0.0.1:9944"
    DEFAULT_ECOSYSTEM = "polkadot"
    SCHEMA = node_schema({"type": "string", "pattern": "^0x[0-9a-f]{64}$"})

    def collect(self) -> dict[str, Any]:
        """Collect this collector's data (see the module docstring)."""
        rpc = RpcSession(self.rpc_url, self.rpc_timeout)
        client_name = rpc.call("system_name", text)
        client_version = rpc.call("system_version", text)
        chain = rpc.call("system_chain", text)
        genesis = rpc.call("chain_getBlockHash", _block_hash, [0])
        health = rpc.call("system_health", _health)
        best = rpc.call("chain_getHeader", _header_number)
        state = rpc.call("system_syncState", _sync_state) or {}
        errors = rpc.errors

        workload = compact({"client_name": client_name, "client_version": client_version})
        if self.process_name is not None:
            facts, problems = process_facts(self.process_name)
            workload.update(facts)
            errors += problems
        peers, syncing = health if health is not None else (None, None)
        data = {
            "blockchain": compact(
                {
                    "blockchain_ecosystem": self.ecosystem,
                    "blockchain_network_name": chain,
                    "chain_id": genesis,
                    "genesis_hash": genesis,
                }
            ),
            "workload": workload,
            "sync": compact({"syncing": syncing, "best_block": best, **state}),
            **compact({"peers": peers}),
            "rpc_url": redact_url(self.rpc_url),
        }
        return finish(data, errors)

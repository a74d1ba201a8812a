"""What the ``substrate`` and ``evm`` collectors share.

Option checks, a JSON-RPC session that keeps one message per failed call, result parsers, the node's
process, and the data's schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from dwellir_harvester.lib import BlockchainCollector, CollectorFailedError, CollectorPartialError
from dwellir_harvester.lib.jsonrpc import JsonRpcError, JsonRpcTransportError, check_http_url, jsonrpc_call
from dwellir_harvester.lib.limits import one_line
from dwellir_harvester.lib.redact import redact_url

from ._process import find_process

T = TypeVar("T")

# --- options -------------------------------------------------------------------------------------


def check_rpc_url(url: object) -> str:
    """``url`` if it is an http(s) URL with a host; ``ValueError`` (never showing credentials) if not."""
    return check_http_url(url, "rpc_url")


def check_seconds(value: object, option: str) -> float:
    """``value`` as a positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} must be a positive number of seconds, not {value!r}")
    return float(value)


def check_text(value: object, option: str) -> str:
    """``value`` as a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{option} must be a non-empty string, not {value!r}")
    return value.strip()


# --- JSON-RPC ------------------------------------------------------------------------------------


def _brief(value: Any) -> str:
    """A node's result, quoted short and on one line (whatever it holds)."""
    try:
        text = json.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return f"a {type(value).__name__}"
    return one_line(text, 80)


class RpcSession:
    """Calls one node, one method after another, keeping one message per call that failed.

    The first call doubles as the reachability check: a transport error there (connection refused,
    no answer in time, not HTTP at all) fails the collector at once, naming the URL and the error,
    instead of waiting for every other call to time out too. A transport error on a later call
    means the node stopped answering: the calls that remain are skipped, each with a message.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.shown = redact_url(url)
        self.errors: list[str] = []
        self._calls = 0
        self._lost: str | None = None

    def call(self, method: str, parse: Callable[[Any], T], params: list[Any] | None = None) -> T | None:
        """``parse(result)`` of ``method``, or ``None`` with a message in ``errors``."""
        first = self._calls == 0
        self._calls += 1
        if self._lost is not None:
            self.errors.append(f"{method}: not called: {self._lost}")
            return None
        try:
            result = jsonrpc_call(self.url, method, params, timeout=self.timeout)
        except JsonRpcTransportError as err:
            self._unreachable(first, method, err.reason, err)
            return None
        except JsonRpcError as err:
            self.errors.append(str(err))
            return None
        except Exception as err:  # noqa: BLE001 - anything else the client lets through is a transport problem
            self._unreachable(first, method, f"{type(err).__name__}: {err}".strip(), err)
            return None
        try:
            return parse(result)
        except (TypeError, ValueError, KeyError) as err:
            self.errors.append(f"{method} at {self.shown}: unexpected result {_brief(result)} ({err})")
            return None

    def _unreachable(self, first: bool, method: str, reason: str, err: Exception) -> None:
        if first:
            raise CollectorFailedError(f"the node at {self.shown} is not reachable: {reason} ({method})") from err
        self._lost = f"the node at {self.shown} stopped answering"
        self.errors.append(f"{method} at {self.shown}: {reason}")


# --- result parsers (raise ValueError or TypeError on anything unexpected) -------------------------


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


#: The largest quantity a node may report (a uint256, as in the EVM); anything larger is a bad field.
MAX_QUANTITY_BITS = 256


def quantity(value: Any) -> int:
    """A non-negative integer of at most 256 bits, given as a JSON number or a ``0x`` hex string."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        if value.bit_length() > MAX_QUANTITY_BITS:
            raise ValueError(f"a quantity larger than 2**{MAX_QUANTITY_BITS}")
        return value
    if isinstance(value, str) and value[:2].lower() == "0x" and len(value) > 2:
        digits = value[2:].lstrip("0")
        if len(digits) > MAX_QUANTITY_BITS // 4:
            raise ValueError(f"a quantity larger than 2**{MAX_QUANTITY_BITS}")
        return int(value[2:], 16)
    raise ValueError("expected a non-negative integer or a 0x-prefixed hex quantity")


def boolean(value: Any) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping`` without the keys whose value is ``None`` (what could not be learned is left out)."""
    return {key: value for key, value in mapping.items() if value is not None}


# --- the collectors' common base -----------------------------------------------------------------


class NodeCollector(BlockchainCollector):
    """The options ``substrate`` and ``evm`` share; each sets ``DEFAULT_RPC_URL`` and ``DEFAULT_ECOSYSTEM``."""

    DEFAULT_RPC_URL: ClassVar[str]
    DEFAULT_ECOSYSTEM: ClassVar[str]
    TIMEOUT: ClassVar[float] = 10.0

    def __init__(
        self,
        rpc_url: str | None = None,
        process_name: str | None = None,
        ecosystem: str | None = None,
        rpc_timeout: float = 2.0,
    ) -> None:
        self.rpc_url = check_rpc_url(self.DEFAULT_RPC_URL if rpc_url is None else rpc_url)
        self.process_name = None if process_name is None else check_text(process_name, "process_name")
        self.ecosystem = check_text(self.DEFAULT_ECOSYSTEM if ecosystem is None else ecosystem, "ecosystem")
        self.rpc_timeout = check_seconds(rpc_timeout, "rpc_timeout")


# --- the node's process and the result ------------------------------------------------------------


def process_facts(process_name: str) -> tuple[dict[str, Any], list[str]]:
    """``({"binary_path", "command_line"}, errors)`` for the node's process."""
    try:
        found = find_process(process_name)
    except ImportError as err:
        return {}, [f"process {process_name!r}: psutil is not available ({err})"]
    except Exception as err:  # noqa: BLE001 - psutil errors name a pid, never the arguments
        return {}, [f"process {process_name!r}: {type(err).__name__}: {err}"]
    if found is None:
        return {}, [f"no running process named {process_name!r}"]
    return compact({"binary_path": found.binary_path, "command_line": found.command_line}), []


def finish(data: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """``data``, or ``CollectorPartialError`` keeping it when something could not be learned."""
    if errors:
        raise CollectorPartialError(errors, data=data)
    return data


def node_schema(chain_id: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a node collector's data; ``chain_id`` is the schema of its chain id."""
    string = {"type": "string", "minLength": 1}
    count = {"type": "integer", "minimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["blockchain", "workload", "sync", "rpc_url"],
        "properties": {
            "blockchain": {
                "type": "object",
                "properties": {
                    "blockchain_ecosystem": string,
                    "blockchain_network_name": string,
                    "chain_id": chain_id,
                },
            },
            "workload": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "client_name": string,
                    "client_version": string,
                    "binary_path": string,
                    "command_line": {"type": "array", "items": {"type": "string"}},
                },
            },
            "sync": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "syncing": {"type": "boolean"},
                    "best_block": count,
                    "current_block": count,
                    "highest_block": count,
                    "starting_block": count,
                },
            },
            "peers": count,
            "rpc_url": string,
        },
    }

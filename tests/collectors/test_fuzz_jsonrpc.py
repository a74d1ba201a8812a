"""Property-based: whatever a node answers, the JSON-RPC client and the node collectors keep the contract.

The client returns a result or raises a ``JsonRpcError`` (nothing else), within its timeout, with a
short single-line message that never shows the URL's credentials. The node collectors turn any
answer into a valid entry (``success``, ``partial`` or ``failed``) that ``json.dumps`` can write.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwellir_harvester.collectors.evm import EvmCollector
from dwellir_harvester.collectors.substrate import SubstrateCollector
from dwellir_harvester.lib import validate_output
from dwellir_harvester.lib.jsonrpc import JsonRpcError, jsonrpc_call
from dwellir_harvester.lib.limits import MAX_MESSAGE
from dwellir_harvester.lib.testing import run_collector
from tests.collectors.conftest import read_request

SECRET = "fuzz-rpc-secret"


class ScriptedNode:
    """A loopback TCP server answering every connection with the next scripted bytes, then closing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.answers: list[bytes] = []
        self.default = b""
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        port = self.listener.getsockname()[1]
        self.url = f"http://user:{SECRET}@127.0.0.1:{port}/"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    read_request(conn)
                    with self.lock:
                        answer = self.answers.pop(0) if self.answers else self.default
                    conn.sendall(answer)
                except OSError:
                    pass

    def script(self, answers: list[bytes], default: bytes = b"") -> None:
        with self.lock:
            self.answers, self.default = list(answers), default

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture(scope="module")
def node() -> Iterator[ScriptedNode]:
    server = ScriptedNode()
    yield server
    server.stop()


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**300), max_value=2**300),
        st.floats(allow_nan=False),
        st.text(max_size=30),
        st.sampled_from(["0x1", "0x", "0xzz", "0x" + "f" * 80, "Polkadot", "\x00\n\x1b"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=15,
)


NO_RESULT = object()


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, object]:
    """A body, and the result a correct client must return for it (``NO_RESULT``: it must raise)."""
    kind = draw(st.sampled_from(["result", "error", "json", "bytes", "deep"]))
    if kind in ("result", "error", "json"):
        if kind == "result":
            body: object = {"jsonrpc": "2.0", "id": 1, "result": draw(json_values)}
        elif kind == "error":
            error = {"code": draw(json_values), "message": draw(json_values), "data": draw(json_values)}
            body = {"jsonrpc": "2.0", "id": 1, "error": draw(st.one_of(st.just(error), json_values))}
        else:
            body = draw(json_values)
        answered = isinstance(body, dict) and "result" in body and not isinstance(body.get("error"), dict)
        return json.dumps(body).encode(), body["result"] if answered else NO_RESULT  # type: ignore[index]
    if kind == "deep":  # parsable depths come back as they are; a parser's stack overflow is an error
        depth = draw(st.one_of(st.integers(min_value=50, max_value=200), st.integers(20_000, 50_000)))
        expected: object = NO_RESULT if depth > 200 else []
        for _ in range(depth - 1 if depth <= 200 else 0):
            expected = [expected]
        return b'{"jsonrpc":"2.0","id":1,"result":' + b"[" * depth + b"]" * depth + b"}", expected
    return draw(st.binary(max_size=200)), NO_RESULT


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, object]:
    """Raw bytes a node sends, and the result a correct client returns (``NO_RESULT`` when it raises)."""
    body, expected = draw(bodies())
    status = draw(st.sampled_from([200, 200, 200, 400, 500, 502]))
    framing = draw(st.sampled_from(["length", "close", "chunked", "garbage-head", "nothing", "short"]))
    if status != 200 or framing in ("garbage-head", "nothing", "short"):
        expected = NO_RESULT
    if framing == "nothing":
        return b"", expected
    if framing == "garbage-head":
        return draw(st.binary(max_size=100)) + b"\r\n\r\n" + body, expected
    head = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n" % status
    if framing == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body, expected
    if framing == "short":
        return head + b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body, expected
    if framing == "chunked":
        return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n", expected
    return head + b"Connection: close\r\n\r\n" + body, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=answers())
def test_the_client_returns_the_result_or_raises_a_json_rpc_error_quickly(node, answer):
    raw, expected = answer
    node.script([raw])
    started = time.monotonic()
    try:
        result = jsonrpc_call(node.url, "system_chain", timeout=1.0)
    except JsonRpcError as err:
        text = str(err)
        assert "\n" not in text and len(text) < 2 * MAX_MESSAGE
        assert SECRET not in text
        assert expected is NO_RESULT, f"a well-formed answer was refused: {text}"
    else:
        assert expected is not NO_RESULT
        assert result == expected
    assert time.monotonic() - started < 3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(["substrate", "evm"]))
def test_the_node_collectors_turn_any_answers_into_a_valid_entry(node, data, which):
    collector = {"substrate": SubstrateCollector, "evm": EvmCollector}[which]
    script = [raw for raw, _ in data.draw(st.lists(answers(), min_size=1, max_size=8))]
    node.script(script, default=script[-1])

    entry = run_collector(collector, {"rpc_url": node.url, "rpc_timeout": 0.5}, validate=False)

    assert entry["meta"]["status"] in ("success", "partial", "failed")
    text = json.dumps(entry)
    assert SECRET not in text
    for error in entry["meta"]["errors"]:
        assert "\n" not in error and len(error) <= MAX_MESSAGE
    validate_output(
        {
            "harvester": {
                "harvester-version": "x",
                "collection_time": entry["meta"]["collection_time"],
                "collectors_used": [which],
                "duration_ms": 0,
            },
            "host": {},
            "collectors": {which: entry},
        }
    )

"""Generated raw requests against a real daemon with tokens: the auth contract holds for every one.

Random bytes, valid requests mutated byte by byte, credentials smuggled inside other fields, wrong
and duplicate credentials, several of them pipelined on one connection. Whatever arrives: no
``/metadata`` or ``/metrics`` answer without a valid token, the daemon stays up and answers
``/healthz``, and no piece of a token ever reaches its log.
"""

from __future__ import annotations

import contextlib
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import healthz_within

TOKEN = b"fuzz-tok-5e1f0a9c"
REVOKED = b"fuzz-old-77d2b1e4"
# A document or /metrics answer carries one of these; a 401, 404, 400 or /healthz answer none.
GUARDED_ANSWER = (b"ETag:", b"version=0.0.4", b"collectors_used", b"dwellir_harvester_build_info")

GUARDED = [b"/metadata", b"/metrics", b"/metadata?x=1", b"http://x/metrics", b"/metrics#f"]
PATHS = [*GUARDED, b"/healthz", b"/%6detadata", b"//metadata", b"/metadata/", b"*", b""]
METHODS = [b"GET", b"HEAD", b"POST", b"get", b"OPTIONS", b"CONNECT", b"G\x00T"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.9", b"HTTP/2.0", b"HTTP/1.1 ", b""]
SEPARATORS = [b"\x85", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\r", b"\n", b"\x00", b"\r\n ", b"\r\n\t", b"\t"]
FIELDS = [
    b"Host: x",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Content-Length: 0",
    b"Content-Length: 5",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding:",
    b"If-None-Match: *",
    b"Accept: */*",
    b"X-Filler: " + b"y" * 300,
]
VALID = [b"Authorization: Bearer " + TOKEN, b"X-Auth-Token: " + TOKEN, b"authorization: bEaReR  " + TOKEN]
WRONG = [
    b"Authorization: Bearer " + REVOKED,
    b"X-Auth-Token: " + REVOKED,
    b"Authorization: Bearer nope",
    b"Authorization: " + TOKEN,
    b"Authorization: Basic " + TOKEN,
    b"Authorization: Bearer\t" + TOKEN,
    b"Authorization: Bearer" + TOKEN,
    b"Authorization: Bearer " + TOKEN + b"x",
    b"Authorization: Bearer " + TOKEN[:-1],
    b"Authorization: Bearer " + TOKEN + b"\x85",
    b"X-Auth-Token: " + TOKEN[1:],
    b"X-Auth-Token:",
    b"X-Auth-Token: " + TOKEN.upper(),
]


def request(method: bytes, path: bytes, version: bytes, fields: list[bytes]) -> bytes:
    return method + b" " + path + b" " + version + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


@st.composite
def forbidden(draw: st.DrawFn) -> bytes:
    """A request that must never be answered with a guarded document: no valid, unambiguous token."""
    kind = draw(st.sampled_from(["random", "wrong", "smuggled", "duplicate"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    fields = draw(st.lists(st.sampled_from(FIELDS), max_size=4))
    if kind == "wrong":
        fields.insert(draw(st.integers(0, len(fields))), draw(st.sampled_from(WRONG)))
    elif kind == "smuggled":  # a credential after a separator inside another field's value
        carrier = b"X-A: a" + draw(st.sampled_from(SEPARATORS)) + draw(st.sampled_from(VALID))
        fields.insert(draw(st.integers(0, len(fields))), carrier)
    else:  # two credential fields, valid or not, in any order
        pair = [draw(st.sampled_from(VALID)), draw(st.sampled_from(VALID + WRONG))]
        fields[0:0] = draw(st.permutations(pair))
    return request(
        draw(st.sampled_from(METHODS)), draw(st.sampled_from(GUARDED)), draw(st.sampled_from(VERSIONS)), fields
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid, authorized request with bytes inserted, deleted or replaced: it may or may not pass."""
    raw = bytearray(
        request(b"GET", draw(st.sampled_from(GUARDED)), b"HTTP/1.1", [b"Host: x", draw(st.sampled_from(VALID))])
    )
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(SEPARATORS), st.binary(min_size=1, max_size=3)))
        if op == "insert":
            raw[at:at] = piece
        elif op == "delete":
            del raw[at : at + len(piece)]
        else:
            raw[at : at + len(piece)] = piece
    return bytes(raw)


def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw``, say we are done sending, and read every answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(OSError):  # the server may refuse and close before reading it all
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(ConnectionError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def test_no_generated_request_reads_a_guarded_endpoint_without_a_valid_token(start_daemon, tmp_path):
    token_file = tmp_path / "tokens.json"
    token_file.write_text(f'[{{"token": "{TOKEN.decode()}"}}, {{"token": "{REVOKED.decode()}", "enabled": false}}]')
    token_file.chmod(0o600)
    daemon = start_daemon("--collectors", "null", "--auth-token-file", str(token_file), "--log-level", "DEBUG")
    daemon.wait_document(headers={"X-Auth-Token": TOKEN.decode()})

    @settings(
        max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
    )
    @given(
        st.one_of(
            st.lists(forbidden(), min_size=1, max_size=3).map(lambda parts: (b"".join(parts), True)),
            mutated().map(lambda raw: (raw, False)),
        )
    )
    def check(case: tuple[bytes, bool]) -> None:
        raw, must_refuse = case
        reply = exchange(daemon.port, raw)
        if must_refuse or TOKEN not in raw:
            leaked = [marker for marker in GUARDED_ANSWER if marker in reply]
            assert not leaked, (raw, reply[:600])
        assert daemon.proc.poll() is None, daemon.log

    check()
    healthz_within(daemon.port, 1.0)
    log = daemon.log
    for secret in (TOKEN, REVOKED):
        for start in range(0, len(secret) - 5):
            assert secret[start : start + 6].decode() not in log, secret[start : start + 6]

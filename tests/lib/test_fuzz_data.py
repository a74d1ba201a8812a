"""Property-based: whatever a collector returns or raises, the harvest keeps the contract.

The contract: ``harvest()`` returns; the document validates and ``json.dumps`` writes it; the
hostile collector's own entry is ``success`` with exactly its data when the data is plain bounded
JSON, else ``failed`` with one short, single-line message; the other collector's entry is untouched;
no secret from the data or the exception reaches the errors.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwellir_harvester.lib import CollectorPartialError, GenericCollector, harvest, validate_output
from dwellir_harvester.lib.limits import MAX_DEPTH, MAX_INT_BITS, MAX_MESSAGE

SECRET = "hunter2-fuzz-secret"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=5),
    st.just(float("nan")),
    st.just(10**400),
)
keys = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=4),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=25,
)


def _nest(value: object, depth: int) -> object:
    for _ in range(depth):
        value = {"n": value}
    return value


def _plain(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is plain JSON data within the SDK's bounds (the oracle)."""
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return value.bit_length() <= MAX_INT_BITS
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    return False


class Fine(GenericCollector):
    NAME = "fine"

    def collect(self):
        return {"ok": True}


def _run(behaviour):
    class Hostile(GenericCollector):
        NAME = "hostile"
        TIMEOUT = 10

        def collect(self):
            return behaviour()

    return harvest([Hostile, Fine])


def _check_common(document):
    validate_output(document)
    json.dumps(document)
    assert document["collectors"]["fine"]["meta"]["status"] == "success"
    hostile = document["collectors"]["hostile"]["meta"]
    for error in hostile["errors"]:
        assert "\n" not in error and len(error) <= MAX_MESSAGE
    assert SECRET not in json.dumps(hostile["errors"])
    return hostile


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(keys, values, max_size=5), depth=st.sampled_from([0, 0, 0, MAX_DEPTH - 2, MAX_DEPTH + 5]))
def test_any_returned_data_keeps_the_contract(data, depth):
    payload = _nest(data, depth)
    document = _run(lambda: payload)

    hostile = _check_common(document)
    if _plain(payload):
        assert hostile["status"] == "success", hostile
        assert document["collectors"]["hostile"]["data"] == json.loads(json.dumps(payload))
    else:
        assert hostile["status"] == "failed", hostile
        assert len(hostile["errors"]) == 1
        assert hostile["errors"][0].startswith("collect() returned data that is not JSON: ")


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from([ValueError, RuntimeError, KeyError, SystemExit, KeyboardInterrupt, CollectorPartialError]),
    message=st.text(max_size=300),
    noise=st.sampled_from(["", "\n", "\x00\x1b[31m", "x" * 20_000]),
)
def test_any_raised_exception_keeps_the_contract(kind, message, noise):
    text = f"{message}{noise} password={SECRET} http://u:{SECRET}@h/"

    def boom():
        if kind is CollectorPartialError:
            raise CollectorPartialError([text, text], data={"kept": 1})
        raise kind(text)

    document = _run(boom)

    hostile = _check_common(document)
    if kind is CollectorPartialError:
        assert hostile["status"] == "partial"
        assert document["collectors"]["hostile"]["data"] == {"kept": 1}
    else:
        assert hostile["status"] == "failed"
        assert hostile["errors"][0].startswith(kind.__name__)

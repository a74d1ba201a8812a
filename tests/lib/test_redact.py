"""``dwellir_harvester.lib.redact``: the one set of rules that keeps secrets out of data, messages and files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwellir_harvester.lib.redact import (
    REDACTED,
    is_sensitive,
    looks_like_key_material,
    redact_argv,
    redact_text,
    redact_url,
    redact_values,
)

#: Option names charms really use (Juju config of node, database and wallet charms), and whether
#: their value must be hidden.
CHARM_OPTIONS = [
    ("db-pass", True),
    ("db_password", True),
    ("postgres-passwd", True),
    ("pwd", True),
    ("seed-phrase", True),
    ("mnemonic", True),
    ("wallet-key", True),
    ("wallet", True),
    ("jwt-secret", True),
    ("jwt", True),
    ("auth-header", True),
    ("basic-auth", True),
    ("node-key", True),
    ("private-key", True),
    ("privkey", True),
    ("api_token", True),
    ("aws-secret-access-key", True),
    ("session-cookie", True),
    ("keystore-passphrase", True),
    ("port", False),
    ("network", False),
    ("log-level", False),
    ("chain", False),
    ("rpc-port", False),
    ("pruning", False),
    ("snapshot-url", False),
]


@pytest.mark.parametrize(("name", "secret"), CHARM_OPTIONS)
def test_realistic_charm_option_names(name, secret):
    assert is_sensitive(name) is secret
    assert (redact_values({name: "value"})[name] == REDACTED) is secret


@pytest.mark.parametrize(
    "value",
    ["0x" + "ab" * 32, "cd" * 40, "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"],
)
def test_key_material_is_redacted_whatever_its_name(value):
    assert looks_like_key_material(value)
    assert redact_values({"anything": [value]}) == {"anything": [REDACTED]}


@pytest.mark.parametrize("value", ["0x1234", "polkadot", "0x" + "ab" * 20, "10.0.0.1:9944"])
def test_ordinary_values_are_kept(value):
    assert not looks_like_key_material(value)
    assert redact_values({"v": value}) == {"v": value}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cannot reach http://admin:hunter2@10.0.0.1:9944/x", "cannot reach http://<redacted>@10.0.0.1:9944/x"),
        ("login failed: password=hunter2 token: hunter2", "login failed: password=<redacted> token: <redacted>"),
        ("A= password=hunter2", "A= password=<redacted>"),
        ('{"db_pass": "hunter2", "port": 5}', '{"db_pass": "<redacted>", "port": 5}'),
        ("GET /?chain=dot&api_key=hunter2", "GET /?chain=dot&api_key=<redacted>"),
        ("token=a=b password=hunter2", "token=<redacted> password=<redacted>"),
        ("sent Bearer hunter2hunter2", "sent Bearer <redacted>"),
        ("peers: 12, syncing: false", "peers: 12, syncing: false"),
    ],
)
def test_redact_text(text, shown):
    assert redact_text(text) == shown


def test_urls_and_argv():
    assert redact_url("https://u:p@h/x?key=1&n=2") == f"https://{REDACTED}@h/x?key={REDACTED}&n=2"
    assert redact_argv(["node", "--rpc-api-key=abc", "--password", "pw", "--port", "1"]) == [
        "node",
        f"--rpc-api-key={REDACTED}",
        "--password",
        REDACTED,
        "--port",
        "1",
    ]


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.text(max_size=30),
    name=st.sampled_from(["password", "db_pass", "api-key", "token", "secret", "jwt", "seed"]),
    separator=st.sampled_from(["=", ": ", ":", '": "', "= "]),
    suffix=st.text(max_size=30),
)
def test_a_sensitive_pair_never_survives_redaction(prefix, name, separator, suffix):
    secret = "Zq9Secret77"
    text = f"{prefix} {name}{separator}{secret} {suffix}"
    assert secret not in redact_text(text)


@pytest.mark.parametrize(
    "text",
    ["a" * 200_000, "a." * 100_000, "http://" + "a" * 200_000, "a:" * 100_000, "password:" * 20_000, "?a=1&" * 40_000],
    ids=["letters", "dotted", "url", "colons", "sensitive-names", "query"],
)
def test_redaction_takes_one_pass_over_a_long_text(text):
    """It was quadratic: 40,000 letters took 30 s, so a collector's long error stalled the harvest."""
    import time

    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 5  # linear is well under a second; quadratic was hours

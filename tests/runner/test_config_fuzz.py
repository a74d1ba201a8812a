"""Generated config files, drop-ins and ``--option`` values against the contract of the config layer.

The contract: a bad input is a ``ConfigError`` (exit 2 on the command line) of one line, at most
``MAX_MESSAGE`` characters, naming the file; a good one gives settings that are JSON-like, finite
and bounded. Never another exception, a traceback or a hang, and never the marker secret that the
generators hide in sensitive keys and URL credentials.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwellir_harvester.cli import build_parser
from dwellir_harvester.config import ConfigError, config_schema_path, load_settings
from dwellir_harvester.lib.limits import MAX_DEPTH, MAX_INT_BITS, MAX_MESSAGE

SECRET = "fuzz-marker-hunter2"
KEYS = sorted(json.loads(config_schema_path().read_text())["properties"])
# In-process examples share one directory per test; each example rewrites the same drop-in.
FUZZ = settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

yaml_words = st.sampled_from(
    [
        *KEYS,
        "on",
        "off",
        "yes",
        "~",
        "null",
        ".inf",
        "-.inf",
        ".nan",
        "1.0e+400",
        "1e400",
        "2024-01-01",
        "0x" + "f" * 300,
        "9" * 400,
        "&a",
        "*a",
        "&b",
        "*b",
        "<<",
        "!!set",
        "!!binary",
        "!!int",
        "!!python/object:os.system",
        "!foo",
        "? ",
        "- ",
        ": ",
        ", ",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "|",
        ">",
        "#",
        "\n",
        "\n  ",
        "\t",
        "%YAML 1.1\n",
        "---\n",
        "\x00",
        "\ufeff",
        f" http://user:{SECRET}@node:9944",  # lib.redact finds no URL glued to a word before it
    ]
)
yaml_ish = st.lists(st.one_of(yaml_words, st.text(max_size=5)), max_size=40).map("".join)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2 ** (MAX_INT_BITS + 64)), max_value=2 ** (MAX_INT_BITS + 64)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["on", "no", "~", "2024-01-01", "1e400", "-", "http://127.0.0.1:9944", "host", "null"]),
)
keys = st.one_of(
    st.sampled_from(KEYS),
    st.text(max_size=8),
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)
secret_urls = [f"http://user:{SECRET}@node:9944", f"wss://node:443/ws?token={SECRET}", [f"https://{SECRET}@node"]]
secret_values = st.sampled_from(
    [
        SECRET,
        [SECRET],
        {"x": SECRET},
        {1: SECRET},
        [{"token": SECRET}],
        f"http://user:{SECRET}@node:9944",
        f"wss://node:443/?token={SECRET}",
        float("nan"),
        10**400,
    ]
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A config document: known and odd keys, odd values, secrets in the sensitive places."""
    doc: dict[Any, Any] = draw(st.dictionaries(keys, values, max_size=5))
    if draw(st.booleans()):
        doc["auth_tokens"] = draw(st.one_of(secret_values, st.lists(st.just(SECRET), max_size=2)))
    if draw(st.booleans()):
        name = draw(st.sampled_from(["substrate", "peers", 1, None]))
        option = draw(st.sampled_from(["password", "api_key", "auth", "jwt_secret"]))
        url = draw(st.sampled_from(secret_urls))
        doc["collector_options"] = {name: {option: draw(secret_values), "rpc_url": url, "limit": draw(values)}}
    if draw(st.booleans()):
        shared = draw(st.lists(values, min_size=1, max_size=3))
        doc.setdefault("collector_options", {})
        if isinstance(doc["collector_options"], dict):
            doc["collector_options"]["a"] = {"x": shared}
            doc["collector_options"]["b"] = {"x": shared}  # the same object twice: an anchor and an alias
    return doc


def nest(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def laughs(levels: int, width: int) -> str:
    """A "billion laughs" document: each level lists ``width`` aliases of the one before."""
    lines = ["l0: &l0 [lol]\n"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]\n" for i in range(1, levels + 1)]
    return "".join(lines)


special_texts = st.one_of(
    st.integers(0, 200).map(lambda n: f"collector_options: {{peers: {{x: {nest(n)}}}}}\n"),
    st.tuples(st.integers(1, 12), st.integers(1, 12)).map(lambda t: laughs(*t)),
    st.tuples(st.sampled_from(KEYS), values, values).map(
        lambda t: yaml.safe_dump({t[0]: t[1]}) + yaml.safe_dump({t[0]: t[2]})  # the same key twice
    ),
    st.sampled_from(["timeout", "interval"]).flatmap(
        lambda key: st.one_of(
            st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.sampled_from(["1e400"])
        ).map(lambda value: f"{key}: {yaml.safe_dump(value).splitlines()[0]}\n")
    ),
)


def dump(document: Any) -> str:
    return yaml.safe_dump(document, default_flow_style=bool(len(repr(document)) % 2), allow_unicode=True)


def check_json_like(value: Any, depth: int = 0) -> None:
    assert depth <= MAX_DEPTH
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            check_json_like(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_like(item, depth + 1)
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert value.bit_length() <= MAX_INT_BITS
    else:
        assert value is None or isinstance(value, (str, bool))


def check_contract(main: Path, dropin: Path) -> None:
    """Load ``main`` and its drop-in: settings that keep the contract, or a short error naming the file."""
    try:
        loaded = load_settings({"config": str(main)}, environ={})
    except ConfigError as err:
        text = str(err)
        assert "\n" not in text and len(text) <= MAX_MESSAGE, text
        assert err.file == str(dropin) and text.startswith(f"{dropin}: "), text
        assert SECRET not in text, text
        return
    check_json_like(loaded.collector_options)
    for number in (loaded.timeout, loaded.interval):
        assert number is None or (isinstance(number, float) and math.isfinite(number))
    effective = loaded.as_dict()
    for path_key in ("files", "collector_paths", "auth_token_file"):  # file paths, shown as the file system has them
        effective.pop(path_key)
    shown = json.dumps(effective, allow_nan=False)
    assert SECRET not in shown, shown


def make_config(directory: Path) -> tuple[Path, Path]:
    main = directory / "config.yaml"
    main.write_text("")
    (directory / "config.d").mkdir(exist_ok=True)
    return main, directory / "config.d" / "50-fuzz.yaml"


@settings(FUZZ, max_examples=600)
@given(text=yaml_ish)
def test_yaml_ish_text(tmp_path, text):
    main, dropin = make_config(tmp_path)
    dropin.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_contract(main, dropin)


@FUZZ
@given(document=documents())
def test_generated_structures(tmp_path, document):
    main, dropin = make_config(tmp_path)
    dropin.write_text(dump(document))
    check_contract(main, dropin)


@settings(FUZZ, max_examples=150)
@given(text=special_texts)
def test_deep_aliased_duplicated_and_odd_numbers(tmp_path, text):
    main, dropin = make_config(tmp_path)
    dropin.write_text(text)
    check_contract(main, dropin)


option_values = st.one_of(
    st.text(max_size=30),
    values.map(lambda v: json.dumps(v, default=str)),
    st.integers(0, 2000).map(nest),
    st.integers(0, 2000).map(lambda n: '{"a": ' * n + "1" + "}" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000, "1" * 300, "[1, NaN]"]),
)


@settings(FUZZ, max_examples=300)
@given(value=option_values, separator=st.sampled_from(["=", ":", ""]))
def test_option_values(value, separator):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            args = build_parser().parse_args(["collect", "--option", f"peers.limit{separator}{value}"])
        except SystemExit as exit:
            assert exit.code == 2
            message = stderr.getvalue()
            assert message.count("\n") == 1 and len(message) <= MAX_MESSAGE + 200, message
            assert "--option" in message
            return
    assert "=" in separator + value
    [(name, key, parsed)] = args.option_pairs
    assert f"{name}.{key}".startswith("peers.limit")
    check_json_like(parsed)


@settings(max_examples=10, deadline=None, database=None)
@given(text=st.one_of(documents().map(dump), special_texts, yaml_ish))
def test_the_command_line_end_to_end(text):
    """A few real runs: exit 0 with the document, or 2 with one line; never a traceback, hang or secret."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "config.yaml"
        config.write_text(text, encoding="utf-8", errors="surrogatepass")
        config.chmod(0o600)  # auth_tokens in a file every user can read is a warning of its own
        proc = subprocess.run(
            [sys.executable, "-m", "dwellir_harvester.cli", "collect", "null", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "HARVESTER_COLLECTOR_PATHS": ""},
        )
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode in (0, 1):  # 1: the collector failed or timed out (a config may say `timeout: 1.0e-09`)
        statuses = {entry["meta"]["status"] for entry in json.loads(proc.stdout)["collectors"].values()}
        assert (proc.returncode == 1) == bool(statuses & {"failed", "timeout"}), proc
    else:
        assert proc.returncode == 2, proc
        assert proc.stdout == "" and proc.stderr.count("\n") == 1 and str(config) in proc.stderr, proc

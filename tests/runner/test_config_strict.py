"""Config files are read strictly and within bounds: a bad file is one short line naming it, never a hang."""

from __future__ import annotations

import os
import time

import pytest
import yaml

from dwellir_harvester.config import ConfigError, load_settings
from dwellir_harvester.lib.limits import MAX_DEPTH, MAX_MESSAGE

SECRET = "hunter2secret"

BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True)
)


@pytest.fixture
def main(tmp_path):
    path = tmp_path / "etc" / "config.yaml"
    path.parent.mkdir()
    path.write_text("")
    return path


def dropin(main, text: str | bytes, name: str = "50-test.yaml"):
    path = main.parent / "config.d" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def load(main):
    return load_settings({"config": str(main)}, environ={})


def refused(main, text: str | bytes) -> ConfigError:
    """Load ``text`` as the main file, which stays strict: return the error, checked to be one short
    line naming the file. The same text in a drop-in leaves that drop-in out alone, with the same
    one-line problem reported and the rest of the config kept."""
    main.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as caught:
        load(main)
    err = caught.value
    assert err.file == str(main)
    message = str(err)
    assert message.startswith(f"{main}: ")
    assert "\n" not in message and len(message) <= MAX_MESSAGE

    main.write_text('collectors: ["null"]\n')
    path = dropin(main, text, "50-bad.yaml")
    good = dropin(main, "collectors: [juju]\n", "60-good.yaml")
    settings = load(main)
    [problem] = settings.problems
    assert problem.where == str(path)
    assert problem.problem.startswith("left out: ") and err.message in problem.problem
    assert "\n" not in problem.problem and len(problem.problem) <= MAX_MESSAGE + 40
    assert str(path) not in settings.files and {str(main), str(good)} <= set(settings.files)
    assert {"null", "juju"} <= set(settings.collectors)
    path.unlink()
    good.unlink()
    main.write_text("")
    return err


def test_billion_laughs_is_refused_at_once_naming_the_file_and_line(main):
    assert len(BILLION_LAUGHS) < 400
    started = time.monotonic()
    err = refused(main, BILLION_LAUGHS)
    assert time.monotonic() - started < 5  # generous: it used to take ~10 s and 1.7 GB
    assert "aliases expand to more than" in err.message and "line " in err.message


def test_an_alias_inside_what_it_names_is_refused(main):
    err = refused(main, "collector_options:\n  peers: &a {x: [*a]}\n")
    assert "line 2" in err.message and "*a refers to a collection that holds it" in err.message


def test_aliases_and_merge_keys_within_bounds_still_work(main):
    dropin(
        main,
        "collector_options:\n"
        "  substrate: &node {rpc_url: 'http://127.0.0.1:9944', rpc_timeout: 3}\n"
        "  evm: {<<: *node, rpc_url: 'http://127.0.0.1:8545'}\n",
    )
    options = load(main).collector_options
    assert options["evm"] == {"rpc_url": "http://127.0.0.1:8545", "rpc_timeout": 3}
    # PyYAML writes an anchor and an alias for an object that appears twice (a charm's drop-in may).
    shared = ["a", "b"]
    dropin(main, yaml.safe_dump({"collector_options": {"x": {"peers": shared}, "y": {"peers": shared}}}), "60-b.yaml")
    assert "&id001" in (main.parent / "config.d" / "60-b.yaml").read_text()
    assert load(main).collector_options["y"] == {"peers": ["a", "b"]}


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("interval: 5\ninterval: 6\n", "interval", 2),
        ("collector_options:\n  evm: {rpc_url: a}\n  evm: {rpc_url: b}\n", "collector_options.evm", 3),
        ("collector_options:\n  evm: {rpc_url: a, 'rpc_url': b}\n", "collector_options.evm.rpc_url", 2),
    ],
)
def test_duplicate_keys_name_the_key_and_line(main, text, key, line):
    err = refused(main, text)
    assert err.key == key
    assert f"line {line}: duplicate key (first at line" in err.message


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("on: true\n", "on", "`on` is read as true; quote it"),
        ("no: 1\n", "no", "`no` is read as false; quote it"),
        ("1: x\n", "1", "`1` is read as a number; quote it"),
        ("~: y\n", "~", "`~` is read as null; quote it"),
        ("2024-01-01: y\n", "2024-01-01", "is read as a date; quote it"),
        ("collector_options: {1: {}}\n", "collector_options.1", "`1` is read as a number"),
        ("collector_options: {peers: {2: x}}\n", "collector_options.peers.2", "`2` is read as a number"),
        ("collector_options: {peers: {x: {yes: 1}}}\n", "collector_options.peers.x.yes", "`yes` is read as true"),
        ("collectors: [{on: 1}]\n", "collectors.0.on", "`on` is read as true"),
        ("? [a, b]\n: 1\n", None, "a list cannot be a key"),
        ("collector_options: {? {a: 1} : x}\n", "collector_options", "a mapping cannot be a key"),
    ],
)
def test_keys_yaml_does_not_read_as_strings_are_refused_with_a_hint(main, text, key, message):
    err = refused(main, text)
    assert err.key == key
    assert message in err.message


def test_keys_yaml_does_not_read_as_strings_give_no_traceback(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    for text in ("on: true\n", "collector_options: {1: {}}\n", "collector_options: {peers: {2: x}}\n"):
        config.write_text(text)
        result = run_cli("collect", "null", "--config", str(config))
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
        assert str(config) in result.stderr and "quote it" in result.stderr


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_nesting_is_bounded_by_max_depth(main):
    # The file's mapping, collector_options' and the collector's: three levels before the value.
    dropin(main, f"collector_options: {{peers: {{x: {nested(MAX_DEPTH - 3)}}}}}\n")
    assert load(main).collector_options["peers"]["x"]
    for levels in (MAX_DEPTH - 2, 500, 100_000):
        err = refused(main, f"collector_options: {{peers: {{x: {nested(levels)}}}}}\n")
        assert f"nested more than {MAX_DEPTH} levels deep" in err.message


def test_nesting_through_aliases_is_bounded_too(main):
    half = MAX_DEPTH // 2
    text = f"collector_options:\n  a: {{x: &deep {nested(half)}}}\n  b: {{x: {'[' * half}*deep{']' * half}}}\n"
    err = refused(main, text)
    assert "nested more than" in err.message and "line 3" in err.message


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("timeout: .inf\n", "timeout", "not a finite number"),
        ("timeout: -.inf\n", "timeout", "not a finite number"),
        ("interval: .nan\n", "interval", "not a finite number"),
        ("timeout: 1.0e+400\n", "timeout", "not a finite number"),
        ("timeout: 1e400\n", "timeout", 'expected a number, got "1e400"'),  # YAML 1.1 reads it as a string
        ("timeout: 1.0e+10\n", "timeout", "must be at most 3600"),
        ("timeout: 99999999999999999999999999\n", "timeout", "must be at most 3600"),
        ("interval: 86401\n", "interval", "must be at most 86400"),
        ("interval: 0.5\n", "interval", "must be at least 1"),
        ("timeout: 0\n", "timeout", "must be greater than 0"),
        ("collector_options: {peers: {n: .nan}}\n", "collector_options.peers.n", "not a finite number"),
        ("collector_options: {peers: {n: " + "9" * 400 + "}}\n", "collector_options.peers.n", "larger than 2**1024"),
        ("collector_options: {peers: {n: " + "9" * 5000 + "}}\n", "collector_options.peers.n", "larger than 2**1024"),
    ],
)
def test_numbers_must_be_finite_and_within_bounds(main, text, key, message):
    err = refused(main, text)
    assert err.key == key
    assert message in err.message


def test_time_values_within_bounds_are_seconds(main):
    dropin(main, "timeout: 3600\ninterval: 1\n")
    settings = load(main)
    assert (settings.timeout, settings.interval) == (3600.0, 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("collector_options: {peers: {since: 2024-01-01}}\n", "`2024-01-01` is read as a date; quote it"),
        ("collector_options: {peers: {blob: !!binary aGVsbG8=}}\n", "!!binary values are not accepted"),
        ("collector_options: {peers: {names: !!set {a, b}}}\n", "!!set values are not accepted"),
        ("collector_options: {peers: {x: !!python/object:os.system {}}}\n", "values are not accepted"),
        ("collector_options: {peers: {x: !!int nope}}\n", "`nope` cannot be read as !!int"),
        ("collector_options: {peers: {x: !!bool nope}}\n", "`nope` cannot be read as !!bool"),
        ("collector_options: {peers: {x: !!int }}\n", "`` cannot be read as !!int"),  # found by the fuzz suite
    ],
)
def test_only_json_like_values_are_accepted(main, text, message):
    err = refused(main, text)
    assert err.key.startswith("collector_options.peers.")
    assert message in err.message


def test_a_fifo_or_a_device_as_a_dropin_is_refused_without_blocking(run_cli, tmp_path):
    main = tmp_path / "etc" / "config.yaml"
    (main.parent / "config.d").mkdir(parents=True)
    main.write_text("")
    fifo = main.parent / "config.d" / "10-fifo.yaml"
    os.mkfifo(fifo)
    result = run_cli("collect", "null", "--config", str(main), timeout=20)
    assert result.returncode == 0, result  # the drop-in is left out; the harvest goes on
    assert f"{fifo}: left out: is a FIFO, not a regular file" in result.stderr
    assert result.json()["harvester"]["problems"] == [
        {"where": str(fifo), "problem": "left out: is a FIFO, not a regular file"}
    ]
    fifo.unlink()
    (main.parent / "config.d" / "10-zero.yaml").symlink_to("/dev/zero")
    [problem] = load(main).problems
    assert problem.problem == "left out: is a character device, not a regular file"
    os.mkfifo(tmp_path / "main-fifo.yaml")
    with pytest.raises(ConfigError, match="is a FIFO, not a regular file"):  # the main file stays strict
        load_settings({"config": str(tmp_path / "main-fifo.yaml")}, environ={})


def test_a_directory_or_an_oversized_file_is_refused(main):
    (main.parent / "config.d" / "10-dir.yaml").mkdir(parents=True)
    [problem] = load(main).problems
    assert problem.where.endswith("10-dir.yaml") and problem.problem == "left out: is a directory, not a regular file"
    (main.parent / "config.d" / "10-dir.yaml").rmdir()
    err = refused(main, "# " + "x" * (1 << 20) + "\n")
    assert err.message.startswith("holds ") and err.message.endswith("more than the limit of 1048576")


def test_hidden_files_in_config_d_are_not_dropins(main):
    (main.parent / "config.d").mkdir()
    (main.parent / "config.d" / ".#10-a.yaml").symlink_to("root@host.1234:1700000000")  # an editor's lock
    (main.parent / "config.d" / ".20-b.yaml").write_text("bogus: 1\n")
    assert load(main).files == [str(main)]


def test_non_utf8_names_the_file_and_the_byte(main):
    err = refused(main, b"collectors: [host]\ncollectors: [\xff]\n")
    assert err.message == "not valid UTF-8 at byte 32 (line 2)"


def test_characters_yaml_refuses_name_the_line(main):
    err = refused(main, "collectors: [host]\nexclude: [\x00]\n")
    assert err.message == "not valid YAML at line 2: character U+0000 is not allowed"


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000 + ": 1\n",
        "collector_options: {" + "x" * 1_000_000 + ": 1}\n",
        "port: '" + "x" * 1_000_000 + "'\n",
        "log_level: '" + "x" * 1_000_000 + "'\n",
        "collectors: {a: '" + "x" * 1_000_000 + "'}\n",
        "collectors: [a\n" + "x" * 1_000_000 + "\n",
        "on" * 400_000 + ": 1\n",
    ],
)
def test_error_messages_stay_short_however_long_the_value(main, text):
    refused(main, text)  # one line, at most MAX_MESSAGE characters


@pytest.mark.parametrize(
    "text",
    [
        f"auth_tokens: {SECRET}\n",
        f"auth_tokens: [{{token: {SECRET}}}]\n",
        f"auth_tokens: ['{SECRET}', 5]\n",
        f"auth_token_file: [{SECRET}]\n",
        f"collector_options: {{peers: 'http://user:{SECRET}@node:9944'}}\n",
        f"collectors: {{rpc: 'http://user:{SECRET}@node:9944'}}\n",
        f"exclude: {{api_key: {SECRET}}}\n",
        f"collector_options: {{peers: {{x: {{password: {SECRET}, on: 1}}}}}}\n",
        f"collector_options: {{peers: {{password: !!int {SECRET}}}}}\n",
        f"collector_options: {{peers: {{api_key: {{{SECRET}: 1, {SECRET}: 2}}}}}}\n",
        f"auth_tokens: [!!bool {SECRET}]\n",
        f"'http://user:{SECRET}@node:9944': 1\n",  # found by the fuzz suite
        f"auth_tokens: [{{{SECRET}-2024-01-01: 1}}, {{2024-01-01: {SECRET}}}]\n",
    ],
)
def test_errors_never_echo_a_secret(main, text):
    err = refused(main, text)
    assert SECRET not in str(err)


def test_a_wrongly_typed_token_says_only_its_type(main):
    err = refused(main, f"auth_tokens: {SECRET}\n")
    assert err.key == "auth_tokens" and err.message == "expected a list, got a string"


def harvested(run_cli, main):
    """``collect`` with the main config ``main`` (which names ``null``): the document."""
    main.write_text("collectors: ['null']\n")
    result = run_cli("collect", "--config", str(main), "--no-validate", timeout=30)
    assert result.returncode == 0, result
    return result.json()


def test_a_withdrawn_dropin_is_left_out_with_its_charms_reason(run_cli, main):
    """A charm whose collectors cannot be wired in says why in its drop-in; the harvest reports it."""
    withdrawn = dropin(main, "# written by a charm\nwithdrawn: \"unknown collector 'peres' (did you mean 'peers'?)\"\n")
    document = harvested(run_cli, main)
    assert set(document["collectors"]) == {"host", "null"}
    assert document["harvester"]["problems"] == [
        {
            "where": str(withdrawn),
            "problem": "withdrawn by its charm: unknown collector 'peres' (did you mean 'peers'?)",
        }
    ]
    # Its reason is one redacted line; the main config may not say it.
    withdrawn.write_text('withdrawn: "cannot reach https://user:hunter2@node:9944\\nsecond line"\n')
    [problem] = load(main).problems
    assert "hunter2" not in problem.problem and "\n" not in problem.problem
    main.write_text("withdrawn: nope\n")
    with pytest.raises(ConfigError, match="withdrawn belongs in a drop-in") as caught:
        load(main)
    assert caught.value.key == "withdrawn"


def test_a_dropin_excluding_an_unknown_collector_is_left_out_alone(run_cli, main):
    dropin(main, "exclude: [host]\n", "10-good.yaml")
    bad = dropin(main, "exclude: [hots]\n", "20-bad.yaml")
    document = harvested(run_cli, main)
    assert set(document["collectors"]) == {"null"}  # the good drop-in's exclude still applies
    [problem] = document["harvester"]["problems"]
    assert problem["where"] == str(bad) and problem["problem"].startswith("left out: exclude: unknown collector 'hots'")


def test_a_dropin_whose_exclude_leaves_nothing_to_collect_is_left_out_alone(run_cli, main):
    dropin(main, "exclude: [host]\n", "10-fine.yaml")
    greedy = dropin(main, "exclude: ['null']\n", "20-greedy.yaml")
    document = harvested(run_cli, main)
    assert set(document["collectors"]) == {"null"}  # 10-fine's exclude still applies
    assert document["harvester"]["problems"] == [
        {"where": str(greedy), "problem": "left out: its exclude leaves nothing to collect"}
    ]
    # The main config and the flags stay strict.
    result = run_cli("collect", "null", "--config", str(main), "--exclude", "null", timeout=30)
    assert result.returncode == 2 and "nothing to collect" in result.stderr

"""The command line's inputs are bounded, its outputs hold only what they promise, and secrets stay out."""

from __future__ import annotations

import json
import os
import stat

import pytest

from dwellir_harvester.cli import build_parser
from dwellir_harvester.lib.limits import MAX_DEPTH
from tests.conftest import collector_source

SECRET = "hunter2secret"


def one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, result
    assert len(result.stderr.splitlines()) == 1, result
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("collect", "null", "--timeout", "1e10"), "--timeout"),
        (("collect", "null", "--timeout", "nan"), "--timeout"),
        (("collect", "null", "--timeout", "inf"), "--timeout"),
        (("collect", "null", "--timeout", "1e400"), "--timeout"),
        (("collect", "null", "--timeout", "3601"), "at most 3600"),
        (("collect", "null", "--timeout", "-1"), "must be greater than 0"),
        (("serve", "--interval", "1e10"), "--interval"),
        (("serve", "--interval", "nan"), "--interval"),
        (("serve", "--interval", "86401"), "at most 86400"),
        (("collect", "null", "--indent", "100000000"), "--indent"),
    ],
)
def test_time_flags_are_finite_and_bounded(run_cli, args, needle):
    one_line_error(run_cli(*args), needle)


def test_time_values_in_a_config_file_are_bounded_too(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    for text, key in (
        ("timeout: .inf\n", "timeout"),
        ("interval: .nan\n", "interval"),
        ("timeout: 1e400\n", "timeout"),
    ):
        config.write_text(text)
        one_line_error(run_cli("collect", "null", "--config", str(config)), str(config), f"key '{key}'")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("[" * 100_000, "nested too deeply"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "nested"),
        ("NaN", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("1e400", "out of range"),
        ("9" * 5000, "larger than 2**1024"),
    ],
)
def test_option_values_are_bounded(run_cli, value, needle):
    one_line_error(run_cli("collect", "null", "--option", f"null.x={value}"), "--option", "null.x", needle)


def test_option_values_within_bounds_parse_as_json_or_stay_text():
    parser = build_parser()
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    pairs = [f"a.deep={deep}", "a.n=12", "a.url=http://x:1", "a.quoted=[1, 2", "a.float=1.5"]
    args = parser.parse_args(["collect", *(arg for pair in pairs for arg in ("--option", pair))])
    values = {key: value for _, key, value in args.option_pairs}
    assert values["n"] == 12 and values["float"] == 1.5
    assert values["url"] == "http://x:1" and values["quoted"] == "[1, 2"  # not JSON: the text itself
    assert json.dumps(values["deep"]) == deep.replace("][", "], [")


def test_a_malformed_option_never_echoes_a_secret(run_cli):
    result = run_cli("collect", "null", "--option", f"substrate.password:{SECRET}")
    one_line_error(result, "expected NAME.KEY=VALUE")
    assert SECRET not in result.stderr
    long = run_cli("collect", "null", "--option", "substrate.password:" + "x" * 100_000, timeout=20)
    one_line_error(long, "expected NAME.KEY=VALUE")


def test_a_url_given_as_a_collector_name_keeps_its_credentials_out_of_the_error(run_cli):
    result = run_cli("collect", f"http://operator:{SECRET}@127.0.0.1:9944")
    one_line_error(result, "unknown collector 'http://<redacted>@127.0.0.1:9944'")
    assert SECRET not in result.stderr


def test_a_warning_while_reading_config_looks_like_every_other_line(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"auth_tokens: [{SECRET}]\ncollector_paths: [missing]\n")
    config.chmod(0o644)
    result = run_cli("collect", "null", "--config", str(config))
    assert result.returncode == 2
    warning, error = result.stderr.splitlines()
    assert warning == f"dwellir-harvester: WARNING: {config} holds auth_tokens but is readable by every user"
    assert error.startswith("dwellir-harvester: error: ") and "does not exist" in error
    assert SECRET not in result.stderr


def test_validate_a_deeply_nested_document(run_cli):
    result = run_cli("validate", "-", stdin="[" * 100_000)
    assert result.returncode == 1
    assert result.stderr == "dwellir-harvester: stdin: not valid JSON: nested too deeply\n"


def test_validate_reads_a_bounded_regular_file_and_says_what_else_it_got(run_cli, tmp_path):
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:  # sparse: 64 MiB and one byte, without writing them
        f.truncate(64 * 1024 * 1024 + 1)
    result = run_cli("validate", str(huge))
    assert result.returncode == 2
    assert result.stderr == f"dwellir-harvester: error: {huge} holds 67108865 bytes, more than the limit of 67108864\n"
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    result = run_cli("validate", str(fifo), timeout=20)  # refused, never waited on
    assert result.returncode == 2 and "is a FIFO, not a regular file" in result.stderr
    result = run_cli("validate", str(tmp_path / "nowhere.json"))
    assert result.returncode == 2 and result.stderr.endswith("nowhere.json: No such file or directory\n")
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    result = run_cli("validate", str(tmp_path / "latin1.json"))
    assert result.returncode == 1 and "not valid JSON" in result.stderr


FLEET = """
from dwellir_harvester.lib import GenericCollector

class FleetCollector(GenericCollector):
    NAME = "fleet"
    VERSION = "1.0.0"

    def __init__(self, api_key: str = "", peers: tuple = ()):
        self.peers = peers

    def collect(self):
        return {"peers": len(self.peers)}
"""


def test_check_config_never_prints_a_secret(run_cli, plugin_dir, tmp_path):
    plugins = plugin_dir(**{"fleet.py": FLEET})
    config = tmp_path / "config.yaml"
    config.write_text(
        f"collectors: [substrate, fleet]\ncollector_paths: [{plugins}]\nauth_tokens: [{SECRET}-token]\n"
        "collector_options:\n"
        f"  substrate: {{rpc_url: 'http://operator:{SECRET}@127.0.0.1:9944'}}\n"
        f"  fleet: {{api_key: {SECRET}, peers: ['wss://u:{SECRET}@peer:443/?token={SECRET}']}}\n"
    )
    config.chmod(0o600)
    result = run_cli("serve", "--check-config", "--config", str(config), "--output", "")
    assert result.returncode == 0, result
    assert SECRET not in result.stdout and SECRET not in result.stderr
    effective = json.loads(result.stdout)
    assert effective["collector_options"]["substrate"]["rpc_url"] == "http://<redacted>@127.0.0.1:9944"
    assert effective["collector_options"]["fleet"]["api_key"] == "<redacted>"
    assert effective["collector_options"]["fleet"]["peers"] == ["wss://<redacted>@peer:443/?token=<redacted>"]
    assert effective["auth_tokens"] == 1


def test_check_config_hides_url_credentials_in_any_setting(run_cli, tmp_path):
    result = run_cli("serve", "--check-config", "--output", "", "--host", f"http://u:{SECRET}@127.0.0.1")
    assert SECRET not in result.stdout and SECRET not in result.stderr


NOISY = collector_source(
    "noisy",
    'print("garbage from collect()")\nreturn {"ok": True}',
    extra='print("garbage at import")',
)
RAW = collector_source(
    "raw",
    'os.write(1, b"raw garbage from collect()\\n")\nreturn {"ok": True}',
    extra='import os\nos.write(1, b"raw garbage at import\\n")',
)
LINGERING = collector_source(
    "lingering",
    """
    import threading
    def chatter():
        for _ in range(200):
            print("still talking", flush=True)
            os.write(1, b"still writing\\n")
            time.sleep(0.01)
    threading.Thread(target=chatter, daemon=True).start()
    time.sleep(30)
    """,
    extra="import os",
)


def test_plugins_that_print_never_reach_the_document(run_cli, plugin_dir):
    plugins = plugin_dir(**{"noisy.py": NOISY, "raw.py": RAW, "lingering.py": LINGERING})
    result = run_cli("collect", "noisy", "raw", "--collector-path", str(plugins))
    assert result.returncode == 0, result
    assert result.json()["collectors"]["noisy"]["meta"]["status"] == "success"  # the whole stdout is the document
    for line in ("garbage at import", "garbage from collect()", "raw garbage at import", "raw garbage from collect()"):
        assert line in result.stderr

    late = run_cli("collect", "lingering", "null", "--timeout", "0.5", "--collector-path", str(plugins))
    assert late.returncode == 1, late
    assert late.json()["collectors"]["lingering"]["meta"]["status"] == "timeout"
    assert "still talking" in late.stderr and "still writing" in late.stderr

    listing = run_cli("list", "--json", "--collector-path", str(plugins))
    assert listing.returncode == 0
    assert {"noisy", "raw"} <= {row["name"] for row in listing.json()["collectors"]}
    table = run_cli("list", "--collector-path", str(plugins)).stdout.splitlines()
    assert table[0].split()[0] == "NAME" and not any("garbage" in line for line in table)


def test_output_that_is_a_directory_fails_before_harvesting(run_cli, plugin_dir, tmp_path):
    marker = tmp_path / "harvested"
    plugins = plugin_dir(**{"mark.py": collector_source("mark", f"open({str(marker)!r}, 'w').close()\nreturn {{}}")})
    result = run_cli("collect", "mark", "--collector-path", str(plugins), "--output", str(tmp_path))
    one_line_error(result, f"--output {tmp_path}: {tmp_path} is a directory")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugins"]  # no temporary file left behind
    one_line_error(run_cli("collect", "null", "--output", "/dev/null"), "/dev/null is not a regular file")


def test_output_keeps_an_existing_files_mode_and_group(run_cli, tmp_path):
    private = tmp_path / "private.json"
    private.write_text("old")
    private.chmod(0o600)
    group = next((g for g in os.getgroups() if g != os.getegid()), None)
    if os.geteuid() == 0:
        group = 4242
    if group is not None:
        os.chown(private, -1, group)
    assert run_cli("collect", "null", "--output", str(private)).returncode == 0
    st = private.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_gid == (group if group is not None else os.getegid())
    assert json.loads(private.read_text())["collectors"]["null"]["meta"]["status"] == "success"

    new = tmp_path / "new.json"
    assert run_cli("collect", "null", "--output", str(new)).returncode == 0
    assert stat.S_IMODE(new.stat().st_mode) == 0o644

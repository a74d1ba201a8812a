"""`dwellir-harvester` as operators use it: real processes, real files, one-line errors."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from tests.conftest import collector_source

PEERS = """
from dwellir_harvester.lib import GenericCollector

class PeersCollector(GenericCollector):
    NAME = "peers"
    VERSION = "1.2.0"

    def __init__(self, rpc_url: str = "http://127.0.0.1:9944", limit: int = 10):
        self.rpc_url, self.limit = rpc_url, limit

    def collect(self):
        return {"rpc_url": self.rpc_url, "limit": self.limit}
"""


@pytest.mark.parametrize("verb", ["collect", "list", "validate", "serve"])
def test_help_shows_defaults_and_environment(run_cli, verb):
    result = run_cli(verb, "--help")
    assert result.returncode == 0
    assert "--collector-path" in result.stdout and "--config" in result.stdout
    assert "/etc/dwellir-harvester/config.yaml" in result.stdout
    if verb in ("collect", "list", "serve"):
        assert "HARVESTER_COLLECTOR_PATHS" in result.stdout and "HARVESTER_CONFIG" in result.stdout
    if verb == "serve":
        assert "DAEMON_AUTH_TOKENS" in result.stdout and "DAEMON_AUTH_TOKEN_FILE" in result.stdout
        assert "127.0.0.1" in result.stdout and "18080" in result.stdout and "300" in result.stdout


def test_console_script_and_module_agree(run_cli, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "dwellir-harvester")
    proc = subprocess.run([script, "collect", "null", "--no-validate"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert (
        json.loads(proc.stdout)["collectors"]["null"]["data"]
        == run_cli("collect", "null").json()["collectors"]["null"]["data"]
    )


def test_the_quick_exit_still_runs_exit_handlers_and_flushes_and_keeps_the_status(plugin_dir, tmp_path):
    """``console()`` skips the interpreter's tear-down, not what an exit must do."""
    marker = tmp_path / "atexit-ran"
    extra = f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')"
    directory = plugin_dir(**{"atexit_plugin.py": collector_source("atexit_plugin", extra=extra)})
    script = os.path.join(os.path.dirname(sys.executable), "dwellir-harvester")
    base = [script, "collect", "--collector-path", str(directory), "--isolation", "thread", "--no-validate"]

    ok = subprocess.run([*base, "atexit_plugin"], capture_output=True, text=True, timeout=60)

    assert ok.returncode == 0, ok.stderr
    assert marker.read_text() == "yes"  # a handler registered by code the harvester ran in itself
    assert json.loads(ok.stdout)["collectors"]["atexit_plugin"]["data"] == {"ok": True}  # flushed in full
    unknown = subprocess.run([*base, "no_such"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and unknown.stderr.startswith("dwellir-harvester: error:")
    with subprocess.Popen([*base, "atexit_plugin"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader went away before the document was written
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) != 0
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr


def test_pretty_on_a_terminal_compact_when_piped(run_cli):
    piped = run_cli("collect", "null")
    assert piped.stdout.count("\n") == 1  # one compact line
    assert run_cli("collect", "null", "--indent", "4").stdout.startswith('{\n    "harvester"')

    primary, replica = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dwellir_harvester.cli", "collect", "null"], stdout=replica, stderr=subprocess.PIPE
    )
    os.close(replica)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(30) == 0
    proc.stderr.close()
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    assert text.startswith('{\n  "harvester"')
    json.loads(text)


def test_output_file_is_written_atomically(run_cli, tmp_path):
    target = tmp_path / "out" / "harvest.json"
    target.parent.mkdir()
    target.write_text("old content")
    result = run_cli("collect", "null", "host", "--output", str(target))
    assert result.returncode == 0 and result.stdout == ""
    document = json.loads(target.read_text())
    assert document["harvester"]["collectors_used"] == ["null", "host"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["harvest.json"]

    missing = run_cli("collect", "null", "--output", str(tmp_path / "nope" / "x.json"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr and str(tmp_path / "nope") in missing.stderr


def test_output_on_a_symbolic_link_replaces_the_link_and_leaves_its_target_alone(run_cli, tmp_path):
    """A link someone else can change must not choose where the harvester writes (docs/operators.md)."""
    target = tmp_path / "elsewhere.json"
    target.write_text("kept")
    link = tmp_path / "harvest.json"
    link.symlink_to(target)
    result = run_cli("collect", "null", "--output", str(link))
    assert result.returncode == 0, result.stderr
    assert not link.is_symlink()
    assert json.loads(link.read_text())["harvester"]["collectors_used"] == ["null"]
    assert target.read_text() == "kept"


def test_errors_are_one_line_with_exit_2(run_cli, tmp_path, plugin_dir):
    cases = [
        (("collect", "nope"), "unknown collector 'nope' (available: "),
        (("collect", "--collector-path", str(tmp_path / "missing")), "does not exist"),
        (("collect", "--config", str(tmp_path / "none.yaml")), "no such file"),
        (("collect", "null", "--exclude", "nope"), "unknown collector 'nope'"),
        (("collect", "null", "--exclude", "null"), "nothing to collect"),
        (("collect", "--timeout", "0"), "must be greater than 0"),
        (("collect", "null", "--option", "null.x"), "expected NAME.KEY=VALUE"),
        (("collect", "null", "--option", "null.x=1"), "unknown option 'x'"),
        (("collect", "null", "--option", "ghost.x=1"), "unknown collector 'ghost'"),
        (("validate", str(tmp_path / "missing.json")), "No such file"),
        (("collect", "null", "--schema", str(tmp_path / "missing.json")), "no such file"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(run_cli):
    result = run_cli("collect", "nope", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "UnknownCollectorError" in result.stderr


def test_collector_failure_exits_1_and_the_entry_says_why(run_cli, plugin_dir):
    plugins = plugin_dir(
        **{
            "broken.py": collector_source("broken", 'raise CollectorFailedError("node unreachable at :9944")'),
            "fine.py": collector_source("fine"),
            "half.py": collector_source("half", 'raise CollectorPartialError(["peers unknown"], data={"a": 1})'),
        }
    )
    result = run_cli("collect", "fine", "half", "broken", "--collector-path", str(plugins))
    assert result.returncode == 1
    entries = result.json()["collectors"]
    assert entries["broken"]["meta"]["errors"] == ["node unreachable at :9944"]
    assert entries["half"]["meta"]["status"] == "partial" and entries["half"]["data"] == {"a": 1}
    assert entries["fine"]["meta"]["status"] == "success"
    assert "broken" in result.stderr  # the log line says which one failed
    assert run_cli("collect", "fine", "half", "--collector-path", str(plugins)).returncode == 0  # partial counts


def test_timeout_exits_1(run_cli, plugin_dir):
    plugins = plugin_dir(**{"sleepy.py": collector_source("sleepy", "import time; time.sleep(30)")})
    result = run_cli("collect", "sleepy", "null", "--collector-path", str(plugins), "--timeout", "0.3", timeout=20)
    assert result.returncode == 1
    assert result.json()["collectors"]["sleepy"]["meta"]["status"] == "timeout"


def test_options_from_config_and_flags_reach_the_constructor(run_cli, plugin_dir, tmp_path):
    plugins = plugin_dir(**{"peers.py": PEERS})
    config = tmp_path / "config.yaml"
    config.write_text(
        f"collectors: [peers]\ncollector_paths: [{plugins}]\n"
        "collector_options:\n  peers: {rpc_url: 'http://node:9944', limit: 3}\n"
    )
    result = run_cli("collect", "--config", str(config))
    assert result.returncode == 0, result
    document = result.json()
    assert document["harvester"]["collectors_used"] == ["host", "peers"]
    assert document["collectors"]["peers"]["data"] == {"rpc_url": "http://node:9944", "limit": 3}

    flagged = run_cli("collect", "peers", "--config", str(config), "--option", "peers.limit=7")
    assert flagged.json()["collectors"]["peers"]["data"]["limit"] == 7

    config.write_text(config.read_text().replace("limit: 3", "limitt: 3"))
    bad = run_cli("collect", "--config", str(config))
    assert bad.returncode == 2
    assert str(config) in bad.stderr and "collector_options.peers" in bad.stderr and "'limitt'" in bad.stderr
    assert "accepted: rpc_url, limit" in bad.stderr


def test_environment_paths_keep_working_and_flags_win_collisions(run_cli, plugin_dir):
    from_env = plugin_dir("env", **{"x.py": collector_source("same", 'return {"from": "env"}')})
    from_flag = plugin_dir("flag", **{"x.py": collector_source("same", 'return {"from": "flag"}')})
    env = {"HARVESTER_COLLECTOR_PATHS": str(from_env)}
    assert run_cli("collect", "same", env=env).json()["collectors"]["same"]["data"] == {"from": "env"}
    both = run_cli("collect", "same", "--collector-path", str(from_flag), env=env)
    assert both.json()["collectors"]["same"]["data"] == {"from": "flag"}
    assert str(from_env) in both.stderr and str(from_flag) in both.stderr  # the override names both origins
    loser = run_cli("collect", f"path:{from_env / 'x.py'}::same", "--collector-path", str(from_flag), env=env)
    assert loser.json()["collectors"][f"path:{from_env / 'x.py'}::same"]["data"] == {"from": "env"}


def test_list_table_and_json(run_cli, plugin_dir):
    plugins = plugin_dir(**{"null.py": collector_source("null", 'return {"mine": True}'), "peers.py": PEERS})
    table = run_cli("list", "--collector-path", str(plugins))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "TYPE", "SOURCE", "OVERRIDES"]
    null_line = next(line for line in lines if line.startswith("null "))
    assert f"path:{plugins / 'null.py'}" in null_line and "builtin:dwellir_harvester.collectors.null" in null_line
    assert any(line.startswith("builtin::null") and "overridden by" in line for line in lines)
    assert any(line.startswith("peers ") and "1.2.0" in line for line in lines)

    listing = run_cli("list", "--json", "--collector-path", str(plugins)).json()
    by_name = {row["name"]: row for row in listing["collectors"]}
    assert by_name["null"]["overrides"] == ["builtin:dwellir_harvester.collectors.null"]
    assert by_name["builtin::null"]["overridden_by"] == f"path:{plugins / 'null.py'}"
    assert by_name["host"]["type"] == "host"
    assert listing["problems"] == []


def test_list_reports_plugins_that_did_not_load(run_cli, plugin_dir):
    plugins = plugin_dir(**{"bad.py": "def oops(:\n", "good.py": collector_source("good")})
    result = run_cli("list", "--json", "--collector-path", str(plugins))
    assert result.returncode == 0
    listing = result.json()
    assert "good" in {row["name"] for row in listing["collectors"]}
    assert listing["problems"][0]["where"] == f"path:{plugins / 'bad.py'}"
    assert "SyntaxError" in listing["problems"][0]["problem"]


def test_validate_verb(run_cli, tmp_path):
    document = run_cli("collect", "null").json()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(document))
    assert run_cli("validate", str(good)).returncode == 0
    assert run_cli("validate", "-", stdin=json.dumps(document)).returncode == 0

    document["system"] = {"hostname": "x"}  # the original harvester's undeclared key
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    result = run_cli("validate", str(bad))
    assert result.returncode == 1
    assert "system" in result.stderr

    notjson = tmp_path / "not.json"
    notjson.write_text("{")
    assert run_cli("validate", str(notjson)).returncode == 1

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["nope"]}))
    custom = run_cli("validate", str(good), "--schema", str(schema))
    assert custom.returncode == 1 and "nope" in custom.stderr


def test_exclude_drops_the_default_host(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("collectors: ['null']\nexclude: [host]\n")
    document = run_cli("collect", "--config", str(config)).json()
    assert document["harvester"]["collectors_used"] == ["null"]
    assert document["host"] == {}


def test_collect_starts_its_worker_first_and_leaves_no_process_behind(run_cli, tmp_path):
    """``collect`` forks its worker before importing the rest of itself; every way out ends it."""
    import uuid

    import psutil

    config = tmp_path / "thread.yaml"
    config.write_text("isolation: thread\n")
    for args in (
        ("collect", "null", "--no-validate"),  # the pre-started worker is adopted
        ("collect", "null", "--config", str(config)),  # config says thread: it is discarded
        ("collect", "no-such-collector"),  # a usage error: discarded too
    ):
        mark = uuid.uuid4().hex  # inherited by every process the command starts
        result = run_cli(*args, env={"DWELLIR_TEST_MARK": mark})
        assert result.returncode in (0, 2), result
        leftovers = []
        for process in psutil.process_iter():
            try:
                if process.environ().get("DWELLIR_TEST_MARK") == mark:
                    leftovers.append(process)
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        assert leftovers == [], (args, leftovers)


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["collect"], True),
        (["collect", "null", "--isolation", "process"], True),
        (["collect", "--isolation", "thread"], False),
        (["collect", "--isolation=thread", "null"], False),
        (["collect", "--help"], False),
        (["list"], False),
        (["serve", "--collectors", "collect"], False),
    ],
)
def test_which_command_lines_start_a_worker_first(argv, wanted):
    from dwellir_harvester.cli import _wants_worker

    assert _wants_worker(argv) is wanted

"""``python -m dwellir_harvester.lib.run`` and ``dwellir_harvester.lib.testing.run_collector``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dwellir_harvester.lib import CollectorOptionError, GenericCollector
from dwellir_harvester.lib.testing import run_collector
from tests.conftest import collector_source

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "plugins"

ECHO = """
    from dwellir_harvester.lib import GenericCollector
    from ._helper import kind

    class EchoCollector(GenericCollector):
        NAME = "echo"
        VERSION = "3.0.0"

        def __init__(self, port=1, name="x", flag=False):
            self.options = {"port": port, "name": name, "flag": flag}

        def collect(self):
            return {key: [value, kind(value)] for key, value in self.options.items()}
"""

STATUSES = """
    import time
    from dwellir_harvester.lib import CollectorFailedError, CollectorPartialError, GenericCollector

    class Ok(GenericCollector):
        NAME = "ok"

        def collect(self):
            return {"fine": True}

    class Partial(GenericCollector):
        NAME = "partial"

        def collect(self):
            raise CollectorPartialError("half", data={"half": True})

    class Failed(GenericCollector):
        NAME = "failed"

        def collect(self):
            raise CollectorFailedError("node is down")

    class Slow(GenericCollector):
        NAME = "slow"

        def collect(self):
            time.sleep(30)
            return {}

    class NotACollector:
        pass
"""

BIG = """
    from dwellir_harvester.lib import GenericCollector

    class Big(GenericCollector):
        NAME = "big"

        def collect(self):
            return {"rows": ["x" * 100 for _ in range(5000)]}  # ~0.6 MB: far more than a pipe buffer
"""


@pytest.fixture
def harness_dir(plugin_dir) -> Path:
    return plugin_dir(
        "harness",
        **{
            "echo.py": ECHO,
            "_helper.py": "def kind(value):\n    return type(value).__name__\n",
            "statuses.py": STATUSES,
            "big.py": BIG,
        },
    )


def parsed(result) -> dict:
    assert result.stdout.strip(), result
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("target", "code", "status"),
    [("statuses:Ok", 0, "success"), ("statuses:Partial", 0, "partial"), ("statuses:Failed", 1, "failed")],
)
def test_the_exit_status_follows_the_entry_status(run_harness, harness_dir, target, code, status):
    result = run_harness(target, "--collector-path", harness_dir)

    assert result.returncode == code, result
    entry = parsed(result)
    assert set(entry) == {"meta", "data"}
    assert entry["meta"]["status"] == status
    assert "Traceback" not in result.stderr


def test_a_timeout_exits_1_without_waiting_for_the_collector(run_harness, harness_dir):
    result = run_harness("statuses:Slow", "--collector-path", harness_dir, "--timeout", "0.2", timeout=10)

    assert result.returncode == 1, result
    meta = parsed(result)["meta"]
    assert meta["status"] == "timeout"
    assert meta["errors"] == ["did not return within 0.2 s"]


def test_options_are_json_when_they_parse_and_text_otherwise(run_harness, harness_dir):
    result = run_harness(
        "echo:EchoCollector", "--collector-path", harness_dir, "--option", "port=9944", "--option", "name=abc"
    )

    assert result.returncode == 0, result
    assert parsed(result)["data"] == {"port": [9944, "int"], "name": ["abc", "str"], "flag": [False, "bool"]}


def test_an_option_overrides_the_options_file(run_harness, harness_dir, tmp_path):
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"port": 1234, "name": "from-file", "flag": True}))

    result = run_harness(
        "echo:EchoCollector", "--collector-path", harness_dir, "--options-file", options, "--option", "name=flag"
    )

    assert result.returncode == 0, result
    assert parsed(result)["data"] == {"port": [1234, "int"], "name": ["flag", "str"], "flag": [True, "bool"]}


@pytest.mark.parametrize(
    "how", ["module-in-dir", "module-in-dir-one-collector", "file-with-class", "file-one-collector"]
)
def test_the_module_is_found_in_a_dir_or_as_a_file(run_harness, harness_dir, how):
    args = {
        "module-in-dir": ["echo:EchoCollector", "--collector-path", harness_dir],
        "module-in-dir-one-collector": ["echo", "--collector-path", harness_dir],
        "file-with-class": [f"{harness_dir / 'echo.py'}:EchoCollector"],
        "file-one-collector": [str(harness_dir / "echo.py")],
    }[how]
    result = run_harness(*args, "--option", "port=2")

    assert result.returncode == 0, result
    entry = parsed(result)
    assert entry["meta"]["collector_name"] == "echo"
    assert entry["meta"]["collector_version"] == "3.0.0"
    assert entry["data"]["port"] == [2, "int"]


def test_a_module_with_several_collectors_needs_a_class(run_harness, harness_dir):
    result = run_harness("statuses", "--collector-path", harness_dir)

    assert result.returncode == 2, result
    assert "defines 4 collectors" in result.stderr


USAGE_ERRORS = {
    "missing-module": (["no_such_module_anywhere:Thing"], "no_such_module_anywhere"),
    "missing-class": (["statuses:Missing", "--collector-path", "{dir}"], "Missing"),
    "not-a-collector": (["statuses:NotACollector", "--collector-path", "{dir}"], "not a collector"),
    "option-without-equals": (["echo:EchoCollector", "--collector-path", "{dir}", "--option", "port"], "KEY=VALUE"),
    "unknown-option": (["echo:EchoCollector", "--collector-path", "{dir}", "--option", "prot=1"], "'prot'"),
    "missing-options-file": (["echo", "--collector-path", "{dir}", "--options-file", "{tmp}/none.json"], "none.json"),
    "malformed-options-file": (["echo", "--collector-path", "{dir}", "--options-file", "{tmp}/bad.json"], "bad.json"),
    "list-options-file": (["echo", "--collector-path", "{dir}", "--options-file", "{tmp}/list.json"], "list.json"),
    "missing-collector-path": (["echo", "--collector-path", "{tmp}/nowhere"], "nowhere"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_a_usage_error_exits_2_with_one_line(run_harness, harness_dir, tmp_path, case):
    (tmp_path / "bad.json").write_text('{"port": ')
    (tmp_path / "list.json").write_text("[1, 2]")
    args, needle = USAGE_ERRORS[case]

    result = run_harness(*(a.format(dir=harness_dir, tmp=tmp_path) for a in args))

    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(run_harness, harness_dir):
    result = run_harness("statuses:Missing", "--collector-path", harness_dir, "--debug")

    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "Missing" in result.stderr


def test_the_sample_plugin_runs_in_the_harness(run_harness):
    result = run_harness("sample_collector:SampleCollector", "--collector-path", SAMPLE_DIR, "--option", "greeting=hi")

    assert result.returncode == 0, result
    entry = parsed(result)
    assert entry["meta"]["collector_name"] == "sample"
    assert entry["data"]["greeting"] == "hi"

    as_file = run_harness(SAMPLE_DIR / "sample_collector.py", "--option", "greeting=")
    assert as_file.returncode == 1, as_file
    [error] = parsed(as_file)["meta"]["errors"]
    assert "option greeting must be a non-empty string" in error


# --- run_collector ----------------------------------------------------------------------------------


class Greeter(GenericCollector):
    NAME = "greeter"

    def __init__(self, greeting: str = "hello") -> None:
        self.greeting = greeting

    def collect(self):
        return {"greeting": self.greeting}


def test_run_collector_passes_options_and_returns_the_entry(validate_document):
    entry = run_collector(Greeter, {"greeting": "moin"})

    assert entry["data"] == {"greeting": "moin"}
    assert entry["meta"]["status"] == "success"
    assert entry["meta"]["collector_name"] == "greeter"
    validate_document({"harvester": _harvester(), "host": {}, "collectors": {"greeter": entry}})


def test_run_collector_rejects_an_unknown_option():
    with pytest.raises(CollectorOptionError, match="'greting'"):
        run_collector(Greeter, {"greting": "typo"})


def test_run_collector_reports_a_timeout_without_raising(release):

    class Stuck(GenericCollector):
        NAME = "stuck"

        def collect(self):
            release.wait()
            return {}

    entry = run_collector(Stuck, timeout=0.1)
    assert entry["meta"]["status"] == "timeout"


def _harvester() -> dict:
    return {
        "harvester-version": "0",
        "collection_time": "2026-01-01T00:00:00Z",
        "collectors_used": ["greeter"],
        "duration_ms": 0,
    }


# --- hostile input to the harness -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "1e10", "-1", "0", "soon"])
def test_a_timeout_that_is_not_a_sane_number_of_seconds_is_a_usage_error(run_harness, harness_dir, value):
    result = run_harness("statuses:Ok", "--collector-path", harness_dir, "--timeout", value, timeout=10)

    assert result.returncode == 2, result
    assert "--timeout" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("statement", "described"),
    [("raise SystemExit(5)", "SystemExit: 5"), ("raise KeyboardInterrupt", "KeyboardInterrupt")],
)
def test_an_interrupt_while_importing_the_module_is_a_one_line_usage_error(
    run_harness, plugin_dir, statement, described
):
    directory = plugin_dir("exits", **{"exits.py": statement + "\n"})

    result = run_harness("exits", "--collector-path", directory, timeout=10)

    assert result.returncode == 2, result
    assert result.stderr.strip().splitlines() == [f"error: importing exits failed: {described}"]


def test_a_reader_that_leaves_early_gets_no_traceback(harness_dir):
    import subprocess
    import sys

    command = [sys.executable, "-m", "dwellir_harvester.lib.run", "statuses:Ok", "--collector-path", str(harness_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # like `| head -0`: nobody reads the document
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=20) == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


@pytest.mark.parametrize("head", [["head", "-c", "10"], ["head", "-n", "1"]], ids=["head -c 10", "head -1"])
def test_a_reader_that_leaves_mid_document_gets_no_traceback(harness_dir, head):
    """``... | head``: the pipe closes after the first bytes or line, while the document is being written."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "dwellir_harvester.lib.run", "big:Big", "--collector-path", str(harness_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        reader = subprocess.run(head, stdin=proc.stdout, capture_output=True, timeout=20, check=True)
        proc.stdout.close()  # only `head` held the reading end; now nobody does
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=20) == 1  # documented: the document was not delivered
    assert reader.stdout.startswith(b"{")
    assert stderr == ""


@pytest.mark.parametrize(
    ("target", "origin"),
    [
        ("statuses:Ok", "statuses.py"),
        ("{dir}/statuses.py:Ok", "statuses.py"),
        ("pack:PackCollector", "pack"),
        ("pack.inner:PackCollector", "pack"),
    ],
    ids=["module-in-dir", "file-path", "package", "package-submodule"],
)
def test_meta_source_is_the_path_form_that_collect_gives(run_harness, run_cli, harness_dir, target, origin):
    """A collector from a plugin directory is ``path:<file>`` in the harness as in ``collect``, never ``class:...``."""
    (harness_dir / "pack").mkdir(mode=0o755)
    (harness_dir / "pack" / "__init__.py").write_text("from .inner import PackCollector\n")
    (harness_dir / "pack" / "inner.py").write_text(collector_source("pack"))
    name = "pack" if origin == "pack" else "ok"
    expected = f"path:{harness_dir.resolve() / origin}"

    harness = run_harness(target.format(dir=harness_dir), "--collector-path", harness_dir)
    collect = run_cli("collect", name, "--collector-path", str(harness_dir), "--isolation", "thread")

    assert collect.returncode == 0, collect
    assert parsed(harness)["meta"]["source"] == expected
    assert collect.json()["collectors"][name]["meta"]["source"] == expected


HINT = "(is it in a plugin directory? pass --collector-path DIR)"


def test_a_module_not_found_without_a_collector_path_hints_at_one(run_harness, harness_dir, plugin_dir):
    hinted = run_harness("eth_node:EthNode")
    searched = run_harness("eth_node:EthNode", "--collector-path", harness_dir)
    # a module that is found, but imports what is missing: the hint would send the author astray
    cwd = plugin_dir("cwd", **{"needs_dep.py": "import no_such_dependency_anywhere\n"})
    dependency = run_harness("needs_dep:Thing", cwd=cwd)

    assert hinted.returncode == 2, hinted
    assert hinted.stderr == f"error: cannot import eth_node: No module named 'eth_node' {HINT}\n"
    assert searched.returncode == 2 and HINT not in searched.stderr and str(harness_dir) in searched.stderr
    assert dependency.returncode == 2 and "no_such_dependency_anywhere" in dependency.stderr, dependency
    assert HINT not in dependency.stderr

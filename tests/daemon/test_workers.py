"""The daemon's collector workers, against the real daemon process: other interpreters, bad drop-ins, a soak."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from dwellir_harvester.lib import validate_output
from tests.support import child_processes

USES_DEPENDENCY = """
import only_in_the_charms_venv
from dwellir_harvester.lib import GenericCollector

class UsesDependency(GenericCollector):
    NAME = "uses-dependency"

    def collect(self):
        return {"answer": only_in_the_charms_venv.ANSWER}
"""

GOOD = """
from dwellir_harvester.lib import GenericCollector

class Good(GenericCollector):
    NAME = "good"

    def collect(self):
        return {"good": True}
"""


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_dropin_with_its_own_python_path_runs_a_collector_the_daemon_could_not_import(
    start_daemon, tmp_path, plugin_dir
):
    """A charm's collector imports the charm's dependency: the daemon's environment lacks it, the worker has it."""
    venv_site = tmp_path / "charm" / "venv"
    write(venv_site / "only_in_the_charms_venv.py", "ANSWER = 42\n")
    collectors = plugin_dir("charm-collectors", **{"uses_dependency.py": USES_DEPENDENCY})
    config = write(tmp_path / "etc" / "config.yaml", "collectors: ['null']\n")
    write(
        config.parent / "config.d" / "50-charm.yaml",
        json.dumps(
            {
                "collector_paths": [str(collectors)],
                "collectors": ["uses-dependency"],
                "python": sys.executable,
                "python_path": [str(venv_site)],
            }
        ),
    )

    daemon = start_daemon("--config", str(config))
    document = daemon.wait_document().json()

    assert document["collectors"]["uses-dependency"]["data"] == {"answer": 42}
    assert document["collectors"]["uses-dependency"]["meta"]["source"] == f"path:{collectors / 'uses_dependency.py'}"
    assert document["harvester"]["problems"] == []


def test_a_bad_dropin_next_to_a_good_one_is_reported_and_the_good_one_served(start_daemon, tmp_path, plugin_dir):
    good = plugin_dir("good", **{"good.py": GOOD})
    config = write(tmp_path / "etc" / "config.yaml", "collectors: ['null']\n")
    dropins = config.parent / "config.d"
    write(dropins / "10-good.yaml", json.dumps({"collector_paths": [str(good)], "collectors": ["good"]}))
    unknown = write(dropins / "20-unknown.yaml", "collectors: [no-such-collector]\n")
    bad_option = write(dropins / "30-option.yaml", "collector_options: {good: {nope: 1}}\n")
    no_python = write(
        dropins / "40-python.yaml",
        json.dumps({"collector_paths": [str(good)], "python": str(tmp_path / "missing-python")}),
    )
    broken = write(dropins / "50-broken.yaml", "collectors: [unclosed\n")

    daemon = start_daemon("--config", str(config))
    document = daemon.wait_document().json()

    assert {k: e["meta"]["status"] for k, e in document["collectors"].items()} == {
        "host": "success",
        "null": "success",
        "good": "success",
    }
    problems = {p["where"]: p["problem"] for p in document["harvester"]["problems"]}
    assert set(problems) == {str(unknown), str(bad_option), str(no_python), str(broken)}
    assert "unknown collector 'no-such-collector'" in problems[str(unknown)]
    assert "unknown option 'nope'" in problems[str(bad_option)]
    assert "cannot start a worker" in problems[str(no_python)]
    assert "not valid YAML at line 2" in problems[str(broken)]
    assert daemon.metrics()[("dwellir_harvester_config_problems", ())] == 4
    assert all(p.startswith("left out: ") for p in problems.values())


def test_check_config_lists_the_problems_and_exits_1(run_cli, tmp_path):
    config = write(tmp_path / "etc" / "config.yaml", "collectors: ['null']\n")
    bad = write(config.parent / "config.d" / "20-unknown.yaml", "collectors: [no-such-collector]\n")

    result = run_cli("serve", "--check-config", "--config", str(config), "--output", "")

    assert result.returncode == 1, result
    [problem] = result.json()["problems"]
    assert problem["where"] == str(bad)


HOSTILE = {
    "segfaults.py": "import ctypes\n        ctypes.string_at(0)",
    "exits.py": "import os\n        os._exit(3)",
    "hangs.py": "import time\n        time.sleep(600)",
    "raises_system_exit.py": "raise SystemExit(4)",
}


def hostile(name: str, body: str) -> str:
    return (
        "from dwellir_harvester.lib import GenericCollector\n\n"
        "class Hostile(GenericCollector):\n"
        f"    NAME = {name!r}\n"
        "    TIMEOUT = 0.05\n\n"
        "    def collect(self):\n"
        f"        {body}\n"
        "        return {}\n"
    )


def threads_and_rss(pid: int) -> tuple[int, int]:
    """The most threads and the most resident KiB seen in 20 looks over a second (a harvest comes and goes)."""
    threads = rss = 0
    for _ in range(20):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        threads, rss = max(threads, int(fields["Threads"])), max(rss, int(fields["VmRSS"].split()[0]))
        time.sleep(0.05)
    return threads, rss


def lasting_zombies(pid: int, seconds: float = 3.0) -> list[int]:
    """Children of ``pid`` that stay zombies for ``seconds``: a worker that just died is one until reaped."""
    lasting = set(zombies_of(pid))
    deadline = time.monotonic() + seconds
    while lasting and time.monotonic() < deadline:
        time.sleep(0.1)
        lasting &= set(zombies_of(pid))
    return sorted(lasting)


def zombies_of(pid: int) -> list[int]:
    return [child for child, state in child_processes(pid).items() if state == "Z"]


@pytest.mark.slow
def test_a_soak_of_500_harvests_with_hostile_plugins(start_daemon, plugin_dir, tmp_path):
    """Plugins that segfault, exit, hang and raise SystemExit, next to a good one, harvest after harvest:
    every document served or written is valid, the daemon's threads and memory stay flat, no zombie."""
    files = {name: hostile(name.removesuffix(".py").replace("_", "-"), body) for name, body in HOSTILE.items()}
    plugins = plugin_dir(**files, **{"good.py": GOOD})
    output = tmp_path / "out" / "harvest.json"
    output.parent.mkdir()
    names = ["good", "null", *(name.removesuffix(".py").replace("_", "-") for name in HOSTILE)]
    daemon = start_daemon(
        "--collectors", *names, "--collector-path", str(plugins), "--interval", "0.02", output=str(output)
    )
    daemon.wait_document()
    daemon.wait_for(output.exists, what="the output file")  # written just after the document is served

    stop = threading.Event()
    checked = {"served": 0, "written": 0}
    failures: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                reply = daemon.request("/metadata")
                validate_output(reply.json())
                assert reply.json()["collectors"]["good"]["meta"]["status"] == "success"
                checked["served"] += 1
                validate_output(json.loads(output.read_text()))
                checked["written"] += 1
            except Exception as err:
                failures.append(repr(err))
            time.sleep(0.01)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    daemon.wait_for(lambda: daemon.count("harvest done") >= 50, timeout=120, what="50 harvests")
    baseline = threads_and_rss(daemon.proc.pid)
    daemon.wait_for(lambda: daemon.count("harvest done") >= 500, timeout=600, what="500 harvests")
    threads, rss = threads_and_rss(daemon.proc.pid)
    stop.set()
    reader.join(10)

    assert failures == []
    assert checked["served"] > 100 and checked["written"] > 100
    assert threads <= baseline[0] + 2, (baseline, threads)
    assert rss <= baseline[1] + 20 * 1024, (baseline, rss)  # KiB: flat, give or take allocator noise
    assert lasting_zombies(daemon.proc.pid) == []  # reaped, not left behind
    samples = daemon.metrics()
    quarantined = {labels for (name, labels) in samples if name == "dwellir_harvester_collector_quarantined"}
    assert {dict(labels)["collector"] for labels in quarantined} >= {"segfaults", "exits"}


def test_list_shows_the_collectors_the_daemon_quarantined(start_daemon, plugin_dir, tmp_path, run_cli):
    exits_late = hostile("exits", "import os, time\n        time.sleep(0.5)\n        os._exit(3)").replace(
        "TIMEOUT = 0.05", "TIMEOUT = 5"
    )  # after good has reported: only exits was running when its worker died
    plugins = plugin_dir(**{"exits.py": exits_late, "good.py": GOOD})
    output = tmp_path / "state" / "harvest.json"
    output.parent.mkdir()
    daemon = start_daemon("--collectors", "good", "exits", "--collector-path", str(plugins), output=str(output))
    daemon.wait_document()
    record = output.parent / "quarantined.json"
    daemon.wait_for(record.exists, what="the quarantine record")
    daemon.stop()
    assert json.loads(record.read_text()) == [{"collector": "exits", "source": f"path:{plugins / 'exits.py'}"}]

    listing = run_cli(
        "list", "--json", "--collector-path", str(plugins), "--config", str(write_config(tmp_path, output))
    )

    rows = {row["name"]: row for row in listing.json()["collectors"]}
    assert rows["exits"]["quarantined"] is True
    assert rows["good"]["quarantined"] is False
    table = run_cli("list", "--collector-path", str(plugins), "--config", str(write_config(tmp_path, output)))
    [line] = [line for line in table.stdout.splitlines() if line.startswith("exits ")]
    assert "quarantined" in line


def write_config(tmp_path: Path, output: Path) -> Path:
    return write(tmp_path / "etc-list" / "config.yaml", json.dumps({"output": str(output)}))

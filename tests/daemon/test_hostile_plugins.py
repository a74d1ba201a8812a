"""Plugins that used to break the daemon through the SDK (issue findings 9 and 10), against the real process."""

from __future__ import annotations

import signal
import time
from pathlib import Path

HUNG = """
import threading
from dwellir_harvester.lib import GenericCollector

class Hung(GenericCollector):
    NAME = "hung"
    TIMEOUT = 0.2

    def collect(self):
        threading.Event().wait()
"""

BLOCKING_VERSION = """
from dwellir_harvester.lib import GenericCollector

class Blocks(str):
    def __str__(self):
        import time
        time.sleep(3600)
    __repr__ = __str__

class Hostile(GenericCollector):
    NAME = "hostile"
    VERSION = Blocks("1.0")

    def collect(self):
        return {}
"""


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_reloads_do_not_start_a_hung_collector_again(start_daemon, plugin_dir):
    """Still-running collectors were tracked by class; a reload re-imports the plugin (a new class),
    so the hung collector started once more per reload: 3 threads became 23 after 20 reloads."""
    plugins = plugin_dir(**{"hung.py": HUNG})
    daemon = start_daemon("--collectors", "hung", "null", "--collector-path", str(plugins))
    daemon.wait_document()
    before = threads_of(daemon.proc.pid)

    for reloads in range(1, 11):  # each reload, then the harvest it starts, before the next one
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(lambda n=reloads: daemon.count("reloaded") >= n, what=f"reload {reloads}")
        daemon.wait_for(lambda n=reloads: daemon.count("harvest done") >= n + 1, what=f"the harvest after {reloads}")

    assert threads_of(daemon.proc.pid) <= before + 2
    assert daemon.count("still running") >= 10


def test_a_version_whose_str_blocks_is_a_load_problem_and_harvests_go_on(start_daemon, plugin_dir, run_cli):
    plugins = plugin_dir(**{"hostile.py": BLOCKING_VERSION})
    daemon = start_daemon("--collectors", "null", "--collector-path", str(plugins))

    started = time.monotonic()
    reply = daemon.wait_document(timeout=20)

    assert time.monotonic() - started < 15
    assert reply.json()["collectors"]["null"]["meta"]["status"] == "success"
    listing = run_cli("list", "--json", "--collector-path", str(plugins))
    [problem] = [p for p in listing.json()["problems"] if p["where"].endswith("hostile.py")]
    assert "invalid VERSION a Blocks" in problem["problem"]

"""Collectors in workers the harvester can kill: real crashes, real hangs, real memory, next to a good one.

Each hostile plugin runs in the same harvest as ``good``, which must still succeed; the wall time
stays within the timeouts plus a small margin; no worker outlives what it was doing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from dwellir_harvester.lib import harvest, validate_output
from dwellir_harvester.lib._protocol import PROTOCOL
from dwellir_harvester.lib.isolation import GRACE, WorkerPool, WorkerSource

GOOD = """
from dwellir_harvester.lib import GenericCollector

class Good(GenericCollector):
    NAME = "good"
    TIMEOUT = 10

    def __init__(self, greeting: str = "hi"):
        self.greeting = greeting

    def collect(self):
        print("a plugin printing to stdout")
        return {"greeting": self.greeting, "pid": __import__("os").getpid()}
"""

HOSTILE = {
    "segfault": "import ctypes\n        ctypes.string_at(0)",
    "exits": "import os\n        os._exit(3)",
    "system_exit": "raise SystemExit(4)",
    "hangs": "import time\n        time.sleep(600)",
    "holds_gil": "import re\n        re.match(r'(a+)+$', 'a' * 40 + 'b')",
    "allocates": "return {'blob': len(bytearray(4 * 1024 ** 3))}",
}


def hostile_source(name: str, body: str, timeout: float = 1.0) -> str:
    return (
        "from dwellir_harvester.lib import GenericCollector\n\n"
        f"class Hostile(GenericCollector):\n"
        f"    NAME = {name.replace('_', '-')!r}\n"
        f"    TIMEOUT = {timeout}\n\n"
        "    def collect(self):\n"
        "        import time\n        time.sleep(0.2)\n"
        f"        {body}\n"
        "        return {}\n"
    )


@pytest.fixture
def pool():
    with WorkerPool(memory_mb=300, import_timeout=3) as made:
        yield made
        pids = made.worker_pids()
    for pid in pids:  # closed and reaped
        assert not Path(f"/proc/{pid}").exists() or "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def discover(pool: WorkerPool, *directories: Path):
    return pool.discover([WorkerSource("main", paths=tuple(map(str, directories)), entry_points=False)])


def statuses(document):
    return {key: (entry["meta"]["status"], entry["meta"]["errors"]) for key, entry in document["collectors"].items()}


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("segfault", "failed", "its worker was killed by signal 11 (SIGSEGV) while this collector was running"),
        ("exits", "failed", "its worker exited with status 3 while this collector was running"),
        ("system_exit", "failed", "SystemExit: 4"),
        ("hangs", "timeout", "did not return within 1 s"),
        ("holds_gil", "timeout", "its worker stopped answering within"),
        ("allocates", "failed", "MemoryError"),
    ],
)
def test_a_hostile_collector_fails_alone_and_the_good_one_succeeds(pool, plugin_dir, case, status, message):
    directory = plugin_dir(**{"good.py": GOOD, f"{case}.py": hostile_source(case, HOSTILE[case])})
    registry = discover(pool, directory)
    name = case.replace("_", "-")

    started = time.monotonic()
    document = pool.harvest(["good", name], registry=registry, options={"good": {"greeting": "moin"}})
    elapsed = time.monotonic() - started

    validate_output(document)
    assert elapsed < 1.0 + GRACE + 2.5, elapsed
    result = statuses(document)
    assert result["good"] == ("success", []), result  # it reported before its neighbour struck
    assert result[name][0] == status, result
    assert any(message in error for error in result[name][1]), result
    if case in ("segfault", "exits"):
        assert pool.quarantined  # it killed the worker: from now on it runs alone
    # the next harvest: the good collector succeeds whatever the hostile one does
    again = statuses(pool.harvest(["good", name], registry=registry, options={"good": {"greeting": "moin"}}))
    assert again["good"] == ("success", []), again
    assert again[name][0] == status


def test_a_collector_that_killed_its_worker_runs_alone_next_time(pool, plugin_dir):
    directory = plugin_dir(**{"good.py": GOOD, "exits.py": hostile_source("exits", HOSTILE["exits"])})
    registry = discover(pool, directory)

    first = pool.harvest(["good", "exits"], registry=registry)
    second = pool.harvest(["good", "exits"], registry=registry)

    assert first["collectors"]["exits"]["meta"]["status"] == "failed"
    assert ("path:" + str(directory / "exits.py"), "exits") in pool.quarantined
    assert second["collectors"]["good"]["meta"]["status"] == "success"
    assert second["collectors"]["good"]["data"]["greeting"] == "hi"


def slow_source(name: str, seconds: float, timeout: float = 10, marker: Path | None = None) -> str:
    """A well-behaved collector that takes ``seconds`` (only the first time, when ``marker`` is given)."""
    return (
        "import os, time\n"
        "from dwellir_harvester.lib import GenericCollector\n\n"
        "class Slow(GenericCollector):\n"
        f"    NAME = {name!r}\n"
        f"    TIMEOUT = {timeout}\n\n"
        "    def collect(self):\n"
        f"        marker = {str(marker) if marker else None!r}\n"
        "        if marker is None or not os.path.exists(marker):\n"
        "            if marker:\n"
        "                open(marker, 'a').close()\n"
        f"            time.sleep({seconds})\n"
        "        return {'pid': os.getpid()}\n"
    )


def test_what_a_dying_worker_took_down_runs_again_alone_and_only_the_culprit_is_quarantined(pool, plugin_dir):
    """The neighbours a crash took down are not lost for this harvest, nor blamed from then on."""
    directory = plugin_dir(
        **{"slow.py": slow_source("slow", 1.0), "exits.py": hostile_source("exits", HOSTILE["exits"], timeout=10)}
    )
    registry = discover(pool, directory)

    started = time.monotonic()
    first = pool.harvest(["slow", "exits"], registry=registry)
    elapsed = time.monotonic() - started

    validate_output(first)
    result = statuses(first)
    assert result["slow"] == ("success", []), result
    assert result["exits"] == (
        "failed",
        [
            "run again after its worker exited with status 3",
            "its worker exited with status 3 while this collector was running",
        ],
    ), result
    assert pool.quarantined == {("path:" + str(directory / "exits.py"), "exits")}
    assert elapsed < 10, elapsed
    assert pool.worker_pids() == []  # slow's own worker was retired; the culprit's died again

    second = pool.harvest(["slow", "exits"], registry=registry)
    assert statuses(second)["slow"] == ("success", [])
    assert statuses(second)["exits"] == ("failed", ["its worker exited with status 3 while this collector was running"])
    assert len(pool.worker_pids()) == 1  # slow back in a shared worker; exits alone, and dead again
    assert second["collectors"]["slow"]["data"]["pid"] != first["collectors"]["slow"]["data"]["pid"]


def test_what_a_worker_that_stopped_answering_took_down_runs_again_in_a_fresh_worker(pool, plugin_dir, tmp_path):
    directory = plugin_dir(
        **{
            "slow.py": slow_source("slow", 6, marker=tmp_path / "ran-once"),
            "holds_gil.py": hostile_source("holds-gil", HOSTILE["holds_gil"]),
        }
    )
    registry = discover(pool, directory)

    result = statuses(pool.harvest(["slow", "holds-gil"], registry=registry))

    assert result["slow"] == ("success", []), result
    assert result["holds-gil"][0] == "timeout"
    assert pool.quarantined == {("path:" + str(directory / "holds_gil.py"), "holds-gil")}


def test_a_lost_collector_with_too_little_time_left_fails_and_an_unknown_culprit_blames_all(pool, plugin_dir):
    directory = plugin_dir(
        **{"slow.py": slow_source("slow", 0.9, timeout=1.1), "exits.py": hostile_source("exits", HOSTILE["exits"])}
    )
    registry = discover(pool, directory)

    result = statuses(pool.harvest(["slow", "exits"], registry=registry))

    message = "its worker exited with status 3 while this collector was running"
    assert result == {"slow": ("failed", [message]), "exits": ("failed", [message])}
    assert {name for _, name in pool.quarantined} == {"slow", "exits"}


def test_collectors_that_pass_the_memory_limit_only_together_both_succeed_and_both_run_alone(plugin_dir):
    grow = (
        "blob = bytearray(70 * 1024 * 1024)\n"
        "        for i in range(0, len(blob), 4096):\n"
        "            blob[i] = 1\n"
        "        time.sleep(1.5)"
    )
    directory = plugin_dir(
        **{"a.py": hostile_source("a", grow, timeout=10), "b.py": hostile_source("b", grow, timeout=10)}
    )
    with WorkerPool(memory_mb=140, import_timeout=3) as pool:
        registry = discover(pool, directory)
        result = statuses(pool.harvest(["a", "b"], registry=registry))

        assert result == {"a": ("success", []), "b": ("success", [])}, result
        assert {name for _, name in pool.quarantined} == {"a", "b"}  # neither was to blame alone: both kept apart
        assert statuses(pool.harvest(["a", "b"], registry=registry)) == result


def test_closing_the_pool_mid_harvest_blames_no_collector(plugin_dir):
    """A harvester that stops (SIGTERM, a restart) during a harvest stops its workers: no quarantine.

    It used to quarantine every collector its stop cut short, and the daemon recorded them, so a
    restart left healthy collectors running alone from then on.
    """
    import threading

    slow = hostile_source("slow", "time.sleep(5)", timeout=10)
    directory = plugin_dir(**{"slow.py": slow})
    pool = WorkerPool(memory_mb=300, import_timeout=3)
    registry = discover(pool, directory)
    documents = []
    harvesting = threading.Thread(target=lambda: documents.append(pool.harvest(["slow"], registry=registry)))
    harvesting.start()
    deadline = time.monotonic() + 10
    while not pool.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the collector is running in its worker
    pool.close()
    harvesting.join(timeout=10)
    assert not harvesting.is_alive()
    [document] = documents
    status, errors = statuses(document)["slow"]
    assert status == "failed" and errors == ["the harvester stopped its worker while this collector was running"]
    assert pool.quarantined == set()


def test_memory_past_the_resident_limit_is_killed_naming_the_limit(plugin_dir):
    grow = (
        "blob = bytearray(250 * 1024 * 1024)\n"
        "        for i in range(0, len(blob), 4096):\n"
        "            blob[i] = 1\n"
        "        time.sleep(5)"
    )
    directory = plugin_dir(**{"good.py": GOOD, "grows.py": hostile_source("grows", grow, timeout=8)})
    with WorkerPool(memory_mb=120) as pool:
        registry = discover(pool, directory)
        document = pool.harvest(["grows"], registry=registry)
        good = pool.harvest(["good"], registry=registry)

    [error] = document["collectors"]["grows"]["meta"]["errors"]
    assert "exceeded the memory limit of 120 MB" in error
    assert good["collectors"]["good"]["meta"]["status"] == "success"


def test_a_plugin_whose_import_hangs_or_crashes_is_a_problem_naming_it(pool, plugin_dir):
    directory = plugin_dir(
        **{
            "a_good.py": GOOD,
            "b_hangs.py": "import time\ntime.sleep(600)\n",
            "c_crashes.py": "import os\nos._exit(9)\n",
        }
    )
    started = time.monotonic()
    registry = discover(pool, directory)

    assert time.monotonic() - started < 3 + 10
    problems = {p.where: p.message for p in registry.problems}
    assert problems[f"path:{directory / 'b_hangs.py'}"] == "importing it did not finish within 3 s (left out)"
    assert (
        problems[f"path:{directory / 'c_crashes.py'}"]
        == "importing it ended the worker: it exited with status 9 (left out)"
    )
    assert statuses(pool.harvest(["good"], registry=registry)) == {"good": ("success", [])}


def test_options_are_checked_in_the_harvester_before_anything_runs(pool, plugin_dir):
    from dwellir_harvester.lib import CollectorOptionError

    registry = discover(pool, plugin_dir(**{"good.py": GOOD}))

    with pytest.raises(CollectorOptionError, match="unknown option 'greting'"):
        pool.harvest(["good"], registry=registry, options={"good": {"greting": "x"}})


def test_workers_are_reused_between_harvests_and_run_outside_the_harvester(pool, plugin_dir):
    registry = discover(pool, plugin_dir(**{"good.py": GOOD}))

    pids = {pool.harvest(["good"], registry=registry)["collectors"]["good"]["data"]["pid"] for _ in range(5)}

    assert len(pids) == 1 and os.getpid() not in pids


def test_a_missing_interpreter_is_a_problem_of_its_source(pool, tmp_path):
    registry = pool.discover([WorkerSource("/etc/dwellir-harvester/config.d/x.yaml", python=str(tmp_path / "nope"))])

    [problem] = registry.problems
    assert problem.where == "/etc/dwellir-harvester/config.d/x.yaml"
    assert "cannot start a worker" in problem.message and "no such file" in problem.message


def test_a_second_virtualenv_provides_what_the_harvester_lacks(pool, plugin_dir, tmp_path):
    site = tmp_path / "charm-venv-site"
    site.mkdir()
    (site / "only_in_the_charm.py").write_text("ANSWER = 42\n")
    directory = plugin_dir(
        **{
            "uses_dep.py": "from dwellir_harvester.lib import GenericCollector\n"
            "import only_in_the_charm\n"
            "class UsesDep(GenericCollector):\n"
            "    NAME = 'uses-dep'\n"
            "    def collect(self):\n"
            "        return {'answer': only_in_the_charm.ANSWER}\n"
        }
    )
    source = WorkerSource(
        "charm", paths=(str(directory),), entry_points=False, python=sys.executable, python_path=(str(site),)
    )

    registry = pool.discover([source])
    document = pool.harvest(["uses-dep"], registry=registry)

    assert document["collectors"]["uses-dep"]["data"] == {"answer": 42}
    assert "only_in_the_charm" not in sys.modules
    with pytest.raises(Exception):  # noqa: B017 - the harvester's own interpreter cannot import it
        __import__("only_in_the_charm")


def test_the_same_harvest_in_threads_and_in_workers_gives_the_same_document_shape(pool, plugin_dir):
    from dwellir_harvester.lib import load_collectors

    directory = plugin_dir(**{"good.py": GOOD})
    threaded = harvest(["good"], registry=load_collectors([directory], entry_points=False, env=False))
    isolated = pool.harvest(["good"], registry=discover(pool, directory))

    for document in (threaded, isolated):
        meta = document["collectors"]["good"]["meta"]
        meta.pop("collection_time"), meta.pop("duration_ms")
        document["collectors"]["good"]["data"].pop("pid")
    assert threaded["collectors"] == isolated["collectors"]


FAKE_WORKER = """#!{python}
import json, socket, sys
fd = int(sys.argv[sys.argv.index("--fd") + 1])
sock = socket.socket(fileno=fd)
sock.sendall(json.dumps({{"type": "hello", "protocol": {protocol}, "sdk": "9.9.9", "pid": 1}}).encode() + b"\\n")
sock.recv(1)
"""


@pytest.mark.parametrize(("protocol", "accepted"), [([2, 0], False), ([0, 9], False), ([1, 7], None)])
def test_a_worker_of_another_protocol_major_version_is_refused_naming_both(pool, tmp_path, protocol, accepted):
    fake = tmp_path / "python-of-another-sdk"
    fake.write_text(FAKE_WORKER.format(python=sys.executable, protocol=json.dumps(protocol)))
    fake.chmod(0o755)

    registry = pool.discover([WorkerSource("charm", python=str(fake))])

    [problem] = registry.problems
    if accepted is False:
        assert (
            f"the worker speaks protocol {protocol[0]}.{protocol[1]} (dwellir-harvester-lib 9.9.9)" in problem.message
        )
        assert f"this harvester speaks {PROTOCOL[0]}.{PROTOCOL[1]} (dwellir-harvester-lib " in problem.message
    else:  # a newer minor version is spoken to; this fake then goes away without discovering
        assert "speaks protocol" not in problem.message
        assert "during discovery" in problem.message


def test_workers_end_when_the_harvester_is_killed(tmp_path, plugin_dir):
    """A harvester killed with SIGKILL cannot stop its workers: they must notice and end themselves."""
    import signal
    import subprocess

    directory = plugin_dir(**{"hangs.py": hostile_source("hangs", HOSTILE["hangs"], timeout=60)})
    pids = tmp_path / "pids"
    script = (
        "import sys\n"
        "from dwellir_harvester.lib.isolation import WorkerPool, WorkerSource\n"
        "pool = WorkerPool()\n"
        f"registry = pool.discover([WorkerSource('main', paths=({str(directory)!r},), entry_points=False)])\n"
        f"open({str(pids)!r}, 'w').write(' '.join(map(str, pool.worker_pids())))\n"
        "pool.harvest(['hangs'], registry=registry)\n"
    )
    harvester = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [worker] = map(int, pids.read_text().split())
    time.sleep(0.5)  # the worker is running the hung collector now
    harvester.send_signal(signal.SIGKILL)
    harvester.wait(5)

    deadline = time.monotonic() + 5
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{worker}").exists()

"""The daemon as operators run it: a real process on a loopback port."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dwellir_harvester.lib import validate_output
from tests.support import child_processes

SERVE = [sys.executable, "-m", "dwellir_harvester.cli", "serve"]

SLOW = """
import time
from dwellir_harvester.lib import GenericCollector

class SlowCollector(GenericCollector):
    NAME = "slow"
    def collect(self):
        time.sleep({seconds})
        return {{"slept": {seconds}}}
"""

FLAKY = """
import os
from dwellir_harvester.lib import CollectorFailedError, GenericCollector

class FlakyCollector(GenericCollector):
    NAME = "flaky"
    def __init__(self, flag: str):
        self.flag = flag
    def collect(self):
        if os.path.exists(self.flag):
            raise CollectorFailedError("the flag file says fail")
        return {{"ok": True}}
"""


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (zombies included: they would be unreaped workers)."""
    return list(child_processes(pid))


HANG = """
import threading
from dwellir_harvester.lib import GenericCollector

class HangCollector(GenericCollector):
    NAME = "hang"
    TIMEOUT = 0.3
    def collect(self):
        threading.Event().wait()
"""


def test_endpoints_serve_the_document_health_and_metrics(start_daemon):
    daemon = start_daemon("--collectors", "host", "null")
    reply = daemon.wait_document()
    assert reply.headers["content-type"] == "application/json"
    document = reply.json()
    validate_output(document)
    assert document["harvester"]["collectors_used"] == ["host", "null"]
    assert document["host"] == document["collectors"]["host"]["data"]

    health = daemon.request("/healthz")
    assert (health.status, health.body) == (200, b"ok\n")

    samples = daemon.metrics()
    assert samples[("dwellir_harvester_collector_status", (("collector", "null"), ("status", "success")))] == 1
    assert samples[("dwellir_harvester_collector_status", (("collector", "null"), ("status", "failed")))] == 0
    assert samples[("dwellir_harvester_harvests_total", ())] >= 1
    assert samples[("dwellir_harvester_harvest_failures_total", ())] == 0
    assert samples[("dwellir_harvester_collector_last_success_timestamp_seconds", (("collector", "host"),))] > 0
    assert ("dwellir_harvester_collector_duration_seconds", (("collector", "host"),)) in samples
    assert daemon.stop() == 0


def test_unknown_paths_methods_and_head(start_daemon):
    daemon = start_daemon("--collectors", "null")
    daemon.wait_document()
    missing = daemon.request("/nope")
    assert missing.status == 404
    assert missing.json()["endpoints"] == ["/metadata", "/healthz", "/metrics"]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        reply = daemon.request("/metadata", method=method)
        assert reply.status == 405, method
        assert reply.headers["allow"] == "GET, HEAD"
    unknown = daemon.request("/metadata", method="BREW")  # a method no server knows: 501, as RFC 9110 says
    assert unknown.status == 501 and unknown.headers["allow"] == "GET, HEAD"
    head = daemon.request("/metadata", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) > 100
    # Responses are built once per harvest: the same bytes twice, with an ETag that revalidates.
    first, second = daemon.request("/metadata"), daemon.request("/metadata")
    assert first.body == second.body
    assert daemon.request("/metadata", headers={"If-None-Match": first.headers["etag"]}).status == 304


def test_503_with_a_json_error_before_the_first_harvest(start_daemon, plugin_dir):
    plugins = plugin_dir(**{"slow.py": SLOW.format(seconds=3)})
    daemon = start_daemon("--collectors", "slow", "--collector-path", str(plugins))
    early = daemon.request("/metadata")
    assert early.status == 503
    assert "error" in early.json()
    assert daemon.request("/healthz").status == 200
    assert daemon.wait_document().json()["collectors"]["slow"]["data"] == {"slept": 3}


def test_port_in_use_fails_at_once_naming_it(start_daemon, plugin_dir):
    plugins = plugin_dir(**{"slow.py": SLOW.format(seconds=30)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "dwellir_harvester.cli",
                "serve",
                "--port",
                str(port),
                "--output",
                "",
                "--collectors",
                "slow",
                "--collector-path",
                str(plugins),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2
    assert time.monotonic() - started < 10  # not after a 30 s harvest
    assert f"127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_idle_connections_do_not_block_other_clients(start_daemon):
    daemon = start_daemon("--collectors", "null")
    daemon.wait_document()
    idle = []
    try:
        for i in range(64):
            sock = socket.create_connection(("127.0.0.1", daemon.port))
            if i % 2:
                sock.sendall(b"GET /metadata HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
            idle.append(sock)
        started = time.monotonic()
        assert daemon.request("/healthz", timeout=3).status == 200
        assert daemon.request("/metadata", timeout=3).status == 200
        assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()


def test_failed_harvest_keeps_serving_the_last_good_document(start_daemon, plugin_dir, tmp_path):
    flag = tmp_path / "fail-now"
    plugins = plugin_dir(**{"flaky.py": FLAKY.format()})
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"collector_options": {"flaky": {"flag": str(flag)}}}))
    daemon = start_daemon(
        "--config", str(config), "--collectors", "flaky", "--collector-path", str(plugins), "--interval", "0.3"
    )
    good = daemon.wait_document().json()
    flag.touch()
    daemon.wait_for(
        lambda: daemon.metrics()[("dwellir_harvester_harvest_failures_total", ())] >= 1, what="a failed harvest"
    )
    served = daemon.request("/metadata").json()
    assert served["collectors"]["flaky"]["meta"]["status"] == "success"
    assert served["harvester"]["collection_time"] == good["harvester"]["collection_time"]
    samples = daemon.metrics()
    assert samples[("dwellir_harvester_serving_stale_document", ())] == 1
    assert samples[("dwellir_harvester_last_harvest_success", ())] == 0
    assert samples[("dwellir_harvester_collector_status", (("collector", "flaky"), ("status", "failed")))] == 1
    assert "still serving the last good document" in daemon.log
    # The output file still holds the good document too.
    on_disk = json.loads((tmp_path / "harvest.json").read_text())
    assert on_disk["harvester"]["collection_time"] == good["harvester"]["collection_time"]


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_hung_collector_is_reported_and_not_restarted_and_sigterm_is_prompt(start_daemon, plugin_dir, isolation):
    plugins = plugin_dir(**{"hang.py": HANG})
    daemon = start_daemon(
        "--collectors", "hang", "null", "--collector-path", str(plugins), "--interval", "0.5", "--isolation", isolation
    )
    document = daemon.wait_document().json()
    assert document["collectors"]["hang"]["meta"]["status"] == "timeout"
    assert document["collectors"]["null"]["meta"]["status"] == "success"
    if isolation == "thread":  # a thread cannot be killed: the next cycles leave it alone
        daemon.wait_for(lambda: "not started again" in daemon.log, what="a second cycle to skip the hung collector")
    else:  # its worker is killed and replaced: never two copies, never a process left behind
        daemon.wait_for(lambda: daemon.count("replacing their worker") >= 3, what="three cycles")
        assert len(children(daemon.proc.pid)) <= 1
    idle = socket.create_connection(("127.0.0.1", daemon.port))
    try:
        started = time.monotonic()
        assert daemon.stop(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        idle.close()
    assert "stopped" in daemon.log


def test_sigint_stops_too(start_daemon):
    daemon = start_daemon("--collectors", "null")
    daemon.wait_document()
    daemon.signal(signal.SIGINT)
    assert daemon.proc.wait(10) == 0


def test_a_long_harvest_is_not_started_twice_and_the_schedule_does_not_drift(start_daemon, plugin_dir):
    plugins = plugin_dir(**{"slow.py": SLOW.format(seconds=0.4)})
    daemon = start_daemon("--collectors", "slow", "--collector-path", str(plugins), "--interval", "1")
    daemon.wait_document()
    times: list[str] = []

    def three_documents() -> bool:
        current = daemon.request("/metadata").json()["harvester"]["collection_time"]
        if not times or times[-1] != current:
            times.append(current)
        return len(times) >= 3

    daemon.wait_for(three_documents, timeout=15, what="three harvests")
    from datetime import datetime

    stamps = [datetime.fromisoformat(t).timestamp() for t in times]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # Harvests start on a 1 s grid: the 0.4 s harvest does not push the next one to 1.4 s.
    assert all(0.8 < gap < 1.25 for gap in gaps), gaps

    busy_plugins = plugin_dir("busy", **{"slow.py": SLOW.format(seconds=1.5)})
    busy = start_daemon("--collectors", "slow", "--collector-path", str(busy_plugins), "--interval", "0.5")
    busy.wait_document()
    busy.wait_for(lambda: "still running; skipping" in busy.log, what="a skipped cycle")


def test_output_file_is_always_complete_json_while_rewritten(start_daemon, tmp_path):
    output = tmp_path / "out" / "harvest.json"
    output.parent.mkdir()
    daemon = start_daemon("--collectors", "host", "null", "--interval", "0.1", output=str(output))
    daemon.wait_for(output.exists, what="the output file")
    reads, errors = 0, []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            validate_output(json.loads(output.read_text()))
            reads += 1
        except ValueError as err:
            errors.append(err)
    assert reads > 50 and not errors
    assert daemon.metrics()[("dwellir_harvester_harvests_total", ())] > 5
    assert daemon.stop() == 0
    assert [p.name for p in output.parent.iterdir()] == ["harvest.json"]  # no temporary file left behind


def test_sighup_applies_a_good_config_and_keeps_the_old_one_when_the_new_is_bad(start_daemon, tmp_path):
    config = tmp_path / "etc" / "config.yaml"
    config.parent.mkdir()
    config.write_text("collectors: ['null']\nexclude: [host]\n")
    daemon = start_daemon("--config", str(config))
    assert daemon.wait_document().json()["harvester"]["collectors_used"] == ["null"]

    (config.parent / "config.d").mkdir()
    (config.parent / "config.d" / "50-more.yaml").write_text("exclude: []\ncollectors: [host]\n")
    config.write_text("collectors: ['null']\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(
        lambda: "host" in daemon.request("/metadata").json()["harvester"]["collectors_used"], what="the reload"
    )

    config.write_text("collectors: ['null'\n")  # broken YAML
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "reload failed" in daemon.log, what="the failed reload")
    assert "keeping the previous config" in daemon.log and str(config) in daemon.log
    assert daemon.request("/metadata").status == 200
    samples = daemon.metrics()
    assert samples[("dwellir_harvester_config_reloads_total", (("result", "failed"),))] == 1
    assert samples[("dwellir_harvester_config_reloads_total", (("result", "ok"),))] == 1
    assert daemon.proc.poll() is None


def test_missing_output_dir_and_bad_config_stop_startup(run_cli, tmp_path):
    result = run_cli("serve", "--port", "0", "--output", str(tmp_path / "nope" / "out.json"))
    assert result.returncode == 2
    assert str(tmp_path / "nope") in result.stderr and "Traceback" not in result.stderr

    config = tmp_path / "bad.yaml"
    config.write_text("intervall: 5\n")
    result = run_cli("serve", "--port", "0", "--output", "", "--config", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr and "intervall" in result.stderr and "interval" in result.stderr


def test_check_config_reports_the_effective_settings(run_cli, tmp_path):
    result = run_cli(
        "serve", "--check-config", "--output", "", "--collectors", "host", "null", "--auth-token", "s3cret"
    )
    assert result.returncode == 0, result
    effective = json.loads(result.stdout)
    assert effective["selected"] == ["host", "null"]
    assert effective["auth_tokens"] == 1
    assert "s3cret" not in result.stdout + result.stderr


def test_daemon_console_script_is_installed(tmp_path):
    script = shutil.which("dwellir-harvester-daemon") or str(Path(sys.executable).parent / "dwellir-harvester-daemon")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    assert "--auth-token-file" in proc.stdout and "--collectors" in proc.stdout


@pytest.mark.parametrize("host", ["0.0.0.0"])
def test_binding_beyond_loopback_without_tokens_warns(host, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dwellir_harvester.cli",
            "serve",
            "--host",
            host,
            "--port",
            "0",
            "--output",
            "",
            "--collectors",
            "null",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("listening on" in line for line in lines):
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
        assert proc.stderr is not None
        proc.stderr.close()
    log = "".join(lines)
    assert "WARNING" in log and "no auth tokens" in log


# --- reloads that fail in any way, hang, or race the stop ----------------------------------------

QUICK = """
from dwellir_harvester.lib import GenericCollector

class QuickCollector(GenericCollector):
    NAME = "quick"
    def collect(self):
        return {"quick": True}
"""


@pytest.mark.parametrize(
    "dropin",
    ["1: x\n", "on: true\n", "collector_options: {1: {}}\n", "collector_options: {null: {rpc_url: 1}}\n"],
)
def test_an_odd_drop_in_is_left_out_and_an_odd_main_file_refused_and_the_daemon_lives(start_daemon, tmp_path, dropin):
    config = tmp_path / "etc" / "config.yaml"
    (config.parent / "config.d").mkdir(parents=True)
    config.write_text("collectors: ['null']\n")
    daemon = start_daemon("--config", str(config))
    daemon.wait_document()
    odd = config.parent / "config.d" / "50-odd.yaml"
    odd.write_text(dropin)
    daemon.signal(signal.SIGHUP)  # a drop-in: left out, reported, the rest reloaded
    daemon.wait_for(lambda: daemon.count("reloaded") == 1, what="the reload without the drop-in")
    daemon.wait_for(
        lambda: daemon.request("/metadata").json()["harvester"]["problems"] != [], what="a document reporting it"
    )
    [problem] = daemon.request("/metadata").json()["harvester"]["problems"]
    assert problem["where"] == str(odd) and problem["problem"].startswith("left out: ")
    assert daemon.metrics()[("dwellir_harvester_config_problems", ())] == 1
    odd.unlink()
    config.write_text("collectors: ['null']\n" + dropin)
    daemon.signal(signal.SIGHUP)  # the main file stays strict: the reload is refused, the old config kept
    daemon.wait_for(lambda: "reload failed" in daemon.log, what="the refused reload")
    failed = [line for line in daemon.lines if "reload failed" in line]
    assert len(failed) == 1 and "keeping the previous config" in failed[0]
    assert "Traceback" not in daemon.log
    assert daemon.proc.poll() is None
    assert daemon.request("/metadata").status == 200
    assert daemon.metrics()[("dwellir_harvester_config_reloads_total", (("result", "failed"),))] == 1


def test_a_reload_whose_plugin_import_hangs_is_abandoned_and_the_daemon_stays_responsive(start_daemon, plugin_dir):
    plugins = plugin_dir(**{"quick.py": QUICK})
    daemon = start_daemon(
        limits={"reload_timeout": 1.0},
        flags={"collectors": ["quick"], "collector_paths": [str(plugins)], "interval": 0.3},
    )
    daemon.wait_document()
    (plugins / "quick.py").write_text("import time\ntime.sleep(3600)\n" + QUICK)  # re-discovery imports it again
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "did not finish within 1 s" in daemon.log, what="the abandoned reload")
    harvests = daemon.metrics()[("dwellir_harvester_harvests_total", ())]
    daemon.wait_for(
        lambda: daemon.metrics()[("dwellir_harvester_harvests_total", ())] > harvests, what="harvests to go on"
    )
    daemon.signal(signal.SIGHUP)  # the hung import still holds its thread: refused, not a second one
    daemon.wait_for(lambda: "still stuck" in daemon.log, what="the second SIGHUP refused")
    started = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert daemon.metrics is not None and "stopped" in daemon.log


def test_a_plugin_import_that_hangs_at_startup_stops_it_with_an_error(start_daemon, plugin_dir):
    plugins = plugin_dir(**{"hang.py": "import time\ntime.sleep(3600)\n"})
    daemon = start_daemon(
        limits={"reload_timeout": 1.0},
        flags={"collectors": ["null"], "collector_paths": [str(plugins)]},
        wait=False,
    )
    assert daemon.proc.wait(20) != 0
    daemon._reader.join(5)
    assert "did not finish within 1 s" in daemon.log
    assert "listening" not in daemon.log


def test_the_port_is_bound_before_plugins_are_imported(plugin_dir):
    plugins = plugin_dir(**{"slowimport.py": "import time\ntime.sleep(30)\n"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run(
            [*SERVE, "--port", str(port), "--output", "", "--collectors", "null", "--collector-path", str(plugins)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert time.monotonic() - started < 10  # not after a 30 s import
    assert f"127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr


STOPS_ITSELF = """
import atexit
import os
import signal
import time
from dwellir_harvester.lib import GenericCollector

atexit.register(time.sleep, 1.5)  # the interpreter lingers at exit: a write started now would run in that time

class StopCollector(GenericCollector):
    NAME = "stop"
    def collect(self):
        os.kill(os.getpid(), signal.SIGTERM)  # the daemon stops while this harvest goes on to its write
        time.sleep(0.3)
        return {"rows": [{"index": i, "text": "x" * 64} for i in range(20000)]}
"""


def test_no_output_write_starts_once_the_daemon_is_stopping(start_daemon, plugin_dir, tmp_path):
    # The main thread used to wait for the write lock once and exit: a harvest thread that took the
    # lock just after wrote while the interpreter exited, and could leave a .tmp file behind.
    plugins = plugin_dir(**{"stop.py": STOPS_ITSELF})
    out = tmp_path / "out"
    out.mkdir()
    daemon = start_daemon(  # in a thread: the plugin signals the daemon's own process
        "--collectors",
        "stop",
        "--collector-path",
        str(plugins),
        "--no-validate",
        "--isolation",
        "thread",
        output=str(out / "harvest.json"),
    )
    assert daemon.proc.wait(20) == 0
    assert list(out.iterdir()) == []  # the harvest finished after the stop began: it wrote nothing

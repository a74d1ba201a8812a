"""Sinks from plugins: an installed distribution's entry point in ``dwellir_harvester.sinks``, in the real daemon."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

MEMO = '''
import os
from dwellir_harvester.sinks import Sink, SinkError

class MemoSink(Sink):
    """Appends each key it is sent to a file: a third-party sink."""

    def __init__(self, path, fail=False):
        self.path, self.fail = path, fail

    def send(self, key, body, metadata):
        if self.fail:
            raise SinkError("memo is down")
        with open(self.path, "a") as f:
            f.write(key + " " + metadata["harvest-sha256"] + "\\n")
'''


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    info = site / "memo_sink-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memo-sink\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dwellir_harvester.sinks]\nmemo = memo_sink:MemoSink\n")
    (site / "memo_sink.py").write_text(textwrap.dedent(MEMO))
    return site


def test_a_plugin_sink_gets_its_options_and_every_document(start_daemon, tmp_path):
    site = make_site(tmp_path)
    memo = tmp_path / "memo.txt"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    daemon = start_daemon(
        {
            "collectors": ["null"],
            "spool_dir": str(tmp_path / "spool"),
            "sinks": [{"type": "memo", "name": "m", "prefix": "p", "options": {"path": str(memo)}}],
        },
        env,
    )
    daemon.wait(lambda: daemon.sink("sent_total", "m") >= 2, what="two deliveries")
    keys = [line.split()[0] for line in memo.read_text().splitlines()]
    node = os.uname().nodename
    assert keys[:2] == [keys[0], f"p/{node}/latest.json"] and keys[0].startswith(f"p/{node}/history/")
    assert daemon.stop() == 0


def test_a_plugin_sink_with_an_unknown_option_or_type_stops_the_daemon_in_one_line(run_cli, tmp_path):
    site = make_site(tmp_path)
    env = {"PYTHONPATH": str(site)}
    config = tmp_path / "config.yaml"
    for sink, message in [
        ({"type": "memo", "options": {"path": "x", "colour": "red"}}, "unexpected keyword argument 'colour'"),
        ({"type": "kafka"}, "unknown sink type 'kafka' (installed: file, memo, s3)"),
    ]:
        config.write_text(
            json.dumps({"isolation": "thread", "output": "", "spool_dir": str(tmp_path / "s"), "sinks": [sink]})
        )
        result = run_cli("serve", "--config", str(config), "--check-config", env=env)
        assert result.returncode == 2, result
        assert message in result.stderr and str(config) in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result

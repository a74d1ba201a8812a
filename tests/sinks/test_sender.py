"""The spool and the sender in this process, with a real sink class and real files."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Mapping

import pytest

from dwellir_harvester.config import ConfigError, SinkSpec
from dwellir_harvester.sinks import Sender, Sink, SinkError, Spool, build_sink, content_hash, node_name
from tests.support import wait_until


class Recording(Sink):
    """Fails while ``down`` is set; records every key it stored, in order."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.stored: list[tuple[str, bytes, dict[str, str]]] = []

    def send(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        if self.down.is_set():
            raise SinkError("endpoint down")
        self.stored.append((key, body, dict(metadata)))


def doc(n: int, stamp: str | None = None) -> bytes:
    document = {
        "harvester": {"collection_time": stamp or f"2026-12-01T00:00:{n:02d}+00:00", "duration_ms": n},
        "host": {"hostname": "node-a"},
        "collectors": {
            "t": {"meta": {"collection_time": "x", "duration_ms": n, "status": "success"}, "data": {"n": n}}
        },
    }
    return json.dumps(document).encode()


def test_spool_order_bounds_and_restart(tmp_path):
    spool = Spool(str(tmp_path / "s"), max_documents=3, max_bytes=10_000)
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    for n in range(5):
        dropped = spool.push(doc(n))
        assert len(dropped) == (1 if n >= 3 else 0)
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert len(names) == 3 and all(stat.S_IMODE((tmp_path / "s" / n).stat().st_mode) == 0o600 for n in names)
    again = Spool(str(tmp_path / "s"), max_documents=3, max_bytes=10_000)  # a restart keeps the spool and its order
    _, body = again.oldest()
    assert json.loads(body)["collectors"]["t"]["data"]["n"] == 2
    again.push(doc(9))
    assert [
        json.loads((tmp_path / "s" / e.name).read_bytes())["collectors"]["t"]["data"]["n"] for e in again._entries
    ] == [3, 4, 9]
    assert again.push(b"x" * 20_000)[0].size == 20_000  # larger than the whole spool: dropped itself
    small = Spool(str(tmp_path / "b"), max_documents=100, max_bytes=len(doc(1)) * 2)
    small.push(doc(1)), small.push(doc(2))
    assert [e.size for e in small.push(doc(3))] == [len(doc(1))]  # bytes bound: the oldest goes


def test_sender_retries_then_drains_in_order_and_skips_unchanged_history(tmp_path):
    sink = Recording()
    sink.down.set()
    changes = threading.Event()
    sender = Sender(
        "rec",
        sink,
        Spool(str(tmp_path / "rec"), 100, 10**6),
        prefix="p",
        retry_initial=0.01,
        retry_max=0.05,
        on_change=changes.set,
    )
    sender.start()
    for n in range(5):
        sender.submit(doc(n))
    wait_until(lambda: sender.stats.failed >= 3 and sender.stats.spooled == 5, 10, "failed attempts")
    assert sink.stored == []
    sink.down.clear()
    wait_until(lambda: sender.stats.spooled == 0, 10, "the spool to drain")
    history = [key for key, _, _ in sink.stored if "/history/" in key]
    assert history == [f"p/node-a/history/2026-12-01T00:00:{n:02d}+00:00.json" for n in range(5)]
    assert (
        sink.stored[-1][0] == "p/node-a/latest.json"
        and json.loads(sink.stored[-1][1])["collectors"]["t"]["data"]["n"] == 4
    )
    sender.submit(doc(4, stamp="2026-12-01T00:01:00+00:00"))  # the same content, a later harvest
    wait_until(lambda: sender.stats.sent == 6, 10, "the sixth delivery")
    assert sink.stored[-1][0] == "p/node-a/latest.json" and len([k for k, _, _ in sink.stored if "/history/" in k]) == 5
    assert sink.stored[-1][2]["harvest-sha256"] == content_hash(json.loads(doc(4)))
    sender.stop()
    restarted = Sender("rec", sink, Spool(str(tmp_path / "rec"), 100, 10**6), prefix="p")
    restarted.start()
    restarted.submit(doc(4, stamp="2026-12-01T00:02:00+00:00"))  # the last hash survives a restart
    wait_until(lambda: restarted.stats.sent == 1, 10, "a delivery after the restart")
    assert len([k for k, _, _ in sink.stored if "/history/" in k]) == 5
    restarted.stop()
    assert changes.is_set()


def test_a_spooled_file_that_is_not_a_document_is_dropped_and_counted(tmp_path):
    spool = Spool(str(tmp_path / "x"), 10, 10**6)
    spool.push(b"not json")
    spool.push(doc(1))
    sink = Recording()
    sender = Sender("x", sink, spool)
    sender.start()
    wait_until(lambda: sender.stats.sent == 1, 10, "the good document")
    assert sender.stats.dropped == 1
    sender.stop()


def test_stop_spools_what_was_handed_over(tmp_path):
    sink = Recording()
    sender = Sender("s", sink, Spool(str(tmp_path / "s"), 10, 10**6))  # never started
    sender.submit(doc(1))
    sender.stop()
    assert len(list((tmp_path / "s").glob("*.json"))) == 1


def test_node_names():
    assert node_name({"host": {"hostname": "a/../b c"}, "collectors": {}}) == "a-..-b-c"
    juju = {"collectors": {"juju": {"data": {"model": "m-1", "deployed_units": ["app/3", "x/0"]}}}}
    assert node_name(juju) == "m-1/app-3"
    charm = {
        "collectors": {
            "juju-charm": {"data": {"applications": {"b": {"topology": {"model_uuid": "u", "unit": "b/1"}}}}}
        }
    }
    assert node_name({**charm, **{"host": {"hostname": "h"}}}) == "u/b-1"
    assert node_name({"host": {"hostname": ".."}, "collectors": []}) != ".."


def test_unknown_sink_type_lists_the_installed_ones():
    with pytest.raises(ConfigError, match=r"unknown sink type 'kafka' \(installed: file, s3\)"):
        build_sink(SinkSpec("k", "kafka", {"type": "kafka"}, "/etc/x.yaml"), {})


def test_s3_sink_without_credentials_file_uses_the_environment_and_never_shows_them(tmp_path):
    spec = SinkSpec("s3", "s3", {"type": "s3", "bucket": "bbb", "endpoint_url": "http://127.0.0.1:9"}, "f")
    sink = build_sink(
        spec, {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_REGION": "eu-west-1"}
    )
    assert sink.credentials is not None and sink.credentials.access_key_id == "AKIAENV"
    assert "envsecret" not in repr(sink.credentials) and "AKIAENV" not in repr(sink.credentials)
    message = sink.explain(RuntimeError("echo AKIAENV envsecret"), "PUT k")
    assert "AKIAENV" not in message and "envsecret" not in message and "127.0.0.1:9" in message


def test_a_document_handed_to_a_stopped_sender_is_spooled_for_the_next(tmp_path):
    sink = Recording()
    old = Sender("s", sink, Spool(str(tmp_path / "s"), 10, 10**6))
    new = Sender("s", sink, Spool(str(tmp_path / "s"), 10, 10**6))  # made (by a reload) before the old one stops
    old.start()
    old.stop()
    old.submit(doc(7))  # a harvest that still held the old sender
    new.start()
    wait_until(lambda: new.stats.sent == 1, 10, "the late document")
    assert json.loads(sink.stored[-1][1])["collectors"]["t"]["data"]["n"] == 7
    new.stop()


def test_rotated_credentials_make_a_reload_build_a_new_sink(tmp_path):
    from dwellir_harvester.config import load_settings
    from dwellir_harvester.sinks import build_sinks

    creds = tmp_path / "s3.yaml"
    creds.write_text("access_key_id: AKIAOLD\nsecret_access_key: old\n")
    creds.chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "spool_dir": str(tmp_path / "spool"),
                "sinks": [
                    {"type": "s3", "bucket": "bbb", "endpoint_url": "http://127.0.0.1:9", "credentials_file": "s3.yaml"}
                ],
            }
        )
    )
    first = build_sinks(load_settings({"config": str(config)}), {})
    same = build_sinks(load_settings({"config": str(config)}), {})
    creds.write_text("access_key_id: AKIANEW\nsecret_access_key: new\n")
    rotated = build_sinks(load_settings({"config": str(config)}), {})
    assert first.key == same.key and rotated.key != first.key
    assert "AKIANEW" not in repr(rotated.key)
    for sinks in (first, same, rotated):
        sinks.stop(0)


def test_a_document_dropped_while_being_sent_is_not_counted_out_twice(tmp_path):
    spool = Spool(str(tmp_path / "s"), max_documents=1, max_bytes=10**6)
    spool.push(doc(1))
    entry, _ = spool.oldest()  # the sender reads it ...
    spool.push(doc(2))  # ... the spool drops it to make room ...
    spool.remove(entry)  # ... and the sender removes it after delivering it
    assert len(spool) == 1 and spool.total_bytes == len(doc(2))

"""The real daemon sends every document to its sinks: the right keys, the right content, nothing lost."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

from tests.support import ACCESS_KEY, SECRET_KEY


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}


def test_file_sink_writes_latest_and_one_history_object_per_change(start_daemon, tmp_path):
    out, spool = tmp_path / "out", tmp_path / "spool"
    daemon = start_daemon(
        {
            "collectors": ["null"],
            "exclude": ["host"],  # its gauges (load, memory) differ on every harvest
            "spool_dir": str(spool),
            "sinks": [{"type": "file", "directory": str(out), "prefix": "/prod/", "name": "local"}],
        }
    )
    hostname = os.uname().nodename
    latest = out / "prod" / hostname / "latest.json"
    # three harvests of unchanged data: three deliveries, one history object
    daemon.wait(lambda: daemon.sink("sent_total", "local") >= 3, what="three deliveries")
    status, _served = daemon.get("/metadata")
    assert status == 200
    document = json.loads(latest.read_text())
    assert set(document) == {"harvester", "host", "collectors"} and set(document["collectors"]) == {"null"}
    history = sorted((out / "prod" / hostname / "history").iterdir())
    assert len(history) == 1, history
    first = json.loads(history[0].read_text())
    assert history[0].name == f"{first['harvester']['collection_time']}.json"
    assert first["harvester"]["collection_time"] < document["harvester"]["collection_time"]
    assert stat.S_IMODE((spool / "local").stat().st_mode) == 0o700
    metrics = daemon.metrics()
    assert metrics[("dwellir_harvester_sink_spooled", (("sink", "local"),))] == 0
    assert metrics[("dwellir_harvester_sink_last_success_timestamp_seconds", (("sink", "local"),))] > 0
    assert metrics[("dwellir_harvester_sink_failed_total", (("sink", "local"),))] == 0
    assert daemon.stop() == 0


def test_s3_sink_keys_content_and_metadata_with_juju_context(start_daemon, moto, tmp_path):
    bucket = f"docs-{uuid.uuid4().hex[:8]}"
    moto.bucket(bucket)
    model = str(uuid.uuid4())
    snapshots = tmp_path / "charms"
    snapshots.mkdir()
    snapshot = {
        "format": 1,
        "updated": "2026-11-25T12:00:00+00:00",
        "topology": {
            "model": "prod",
            "model_uuid": model,
            "application": "polkadot",
            "unit": "polkadot/0",
            "charm": "polkadot",
            "leader": True,
        },
        "config": {},
        "relations": [],
    }
    (snapshots / "polkadot.json").write_text(json.dumps(snapshot))
    daemon = start_daemon(
        {
            "collectors": ["null", "juju-charm"],
            "exclude": ["host"],
            "collector_options": {"juju-charm": {"snapshot_dir": str(snapshots)}},
            "spool_dir": str(tmp_path / "spool"),
            "sinks": [
                {
                    "type": "s3",
                    "endpoint_url": moto.url,
                    "bucket": bucket,
                    "prefix": "fleet",
                    "region": "us-east-1",
                    "path_style": True,
                    "retry_initial": 0.1,
                    "retry_max": 0.5,
                }
            ],
        },
        {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
    )
    daemon.wait(lambda: daemon.sink("sent_total", "s3") >= 2, what="two deliveries")
    objects = moto.objects(bucket)
    node = f"fleet/{model}/polkadot-0"
    assert f"{node}/latest.json" in objects, sorted(objects)
    history = [k for k in objects if k.startswith(f"{node}/history/")]
    assert len(history) == 1, sorted(objects)  # the same content: no second history object
    document = json.loads(objects[history[0]])
    assert history[0] == f"{node}/history/{document['harvester']['collection_time']}.json"
    assert document["collectors"]["juju-charm"]["data"]["applications"]["polkadot"]["topology"]["unit"] == "polkadot/0"
    head = moto.client().head_object(Bucket=bucket, Key=f"{node}/latest.json")
    assert len(head["Metadata"]["harvest-sha256"]) == 64
    assert head["Metadata"]["node"] == f"{model}/polkadot-0"
    assert head["ContentType"] == "application/json"
    assert daemon.stop() == 0


def test_outage_every_harvest_made_meanwhile_arrives(start_daemon, own_moto, ticker, tmp_path):
    server = own_moto()
    server.bucket("outage")
    spool = tmp_path / "spool" / "s3"
    daemon = start_daemon(
        {
            "collectors": ["ticker"],
            "collector_paths": [str(ticker)],
            "spool_dir": str(tmp_path / "spool"),
            "sinks": [
                {
                    "type": "s3",
                    "endpoint_url": server.url,
                    "bucket": "outage",
                    "region": "us-east-1",
                    "retry_initial": 0.1,
                    "retry_max": 0.4,
                    "timeout": 2,
                }
            ],
        },
        {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
    )
    daemon.wait(lambda: daemon.sink("sent_total", "s3") >= 1, what="a first delivery")
    server.stop()
    pending = daemon.wait(
        lambda: len(list(spool.glob("*.json"))) >= 3 and sorted(spool.glob("*.json")), 30, "three spooled documents"
    )
    assert daemon.sink("failed_total", "s3") >= 1
    times = [json.loads(p.read_text())["harvester"]["collection_time"] for p in pending]
    assert times == sorted(times)  # listing order is harvest order
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pending)
    assert daemon.log.count("send failed") == 1, daemon.log  # one line for the outage, not one per retry
    server.start()  # an empty server: the bucket is made again, as an operator would
    server.bucket("outage")
    daemon.wait(lambda: daemon.sink("spooled", "s3") == 0 and not list(spool.glob("*.json")), 30, "the spool to drain")
    objects = server.objects("outage")
    node = os.uname().nodename
    for stamp in times:
        assert f"{node}/history/{stamp}.json" in objects, (stamp, sorted(objects))
    latest = json.loads(objects[f"{node}/latest.json"])
    assert latest["harvester"]["collection_time"] >= times[-1]
    assert "delivering again" in daemon.log
    assert daemon.stop() == 0


def test_a_full_spool_drops_the_oldest_with_a_counter(start_daemon, ticker, tmp_path):
    from tests.support import free_port

    spool = tmp_path / "spool" / "down"
    daemon = start_daemon(
        {
            "collectors": ["ticker"],
            "collector_paths": [str(ticker)],
            "spool_dir": str(tmp_path / "spool"),
            "spool_max_documents": 2,
            "sinks": [
                {
                    "type": "s3",
                    "name": "down",
                    "endpoint_url": f"http://127.0.0.1:{free_port()}",
                    "bucket": "nowhere",
                    "region": "us-east-1",
                    "retry_initial": 0.05,
                    "retry_max": 0.1,
                    "timeout": 1,
                }
            ],
        },
    )
    daemon.wait(lambda: daemon.sink("dropped_total", "down") >= 2, 30, "two dropped documents")
    kept = sorted(spool.glob("*.json"))
    assert len(kept) <= 2
    ns = [json.loads(p.read_text())["collectors"]["ticker"]["data"]["n"] for p in kept]
    assert ns == sorted(ns) and min(ns) >= 2  # the oldest went first
    assert "spool full (2 documents" in daemon.log
    assert daemon.sink("sent_total", "down") == 0
    assert daemon.stop() == 0


def test_bad_credentials_one_clear_line_a_spooled_document_and_no_secret_anywhere(start_daemon, own_moto, tmp_path):
    server = own_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # moto checks credentials: these are unknown
    secret_file = tmp_path / "s3.yaml"
    secret_file.write_text(
        f"access_key_id: {ACCESS_KEY}\nsecret_access_key: {SECRET_KEY}\nsession_token: tok-xyz-123\n"
    )
    secret_file.chmod(0o600)
    spool = tmp_path / "spool" / "s3"
    daemon = start_daemon(
        {
            "collectors": ["null"],
            "spool_dir": str(tmp_path / "spool"),
            "sinks": [
                {
                    "type": "s3",
                    "endpoint_url": server.url,
                    "bucket": "locked",
                    "region": "us-east-1",
                    "credentials_file": str(secret_file),
                    "retry_initial": 0.1,
                    "retry_max": 0.3,
                }
            ],
        },
        None,
        "--log-level",
        "DEBUG",
    )
    daemon.wait(lambda: daemon.sink("failed_total", "s3") >= 3, what="failed sends")
    [line] = [line for line in daemon.lines if "send failed" in line]
    assert "refused the credentials" in line and "InvalidAccessKeyId" in line, line
    assert list(spool.glob("*.json")) and daemon.sink("spooled", "s3") >= 1
    _, metrics = daemon.get("/metrics")
    _status, document = daemon.get("/metadata")
    assert daemon.stop() == 0
    everything = daemon.log + metrics.decode() + document.decode()
    everything += "".join(p.read_text() for p in spool.glob("*.json"))
    for secret in (ACCESS_KEY, SECRET_KEY, "tok-xyz-123"):
        assert secret not in everything


def test_a_credentials_file_others_can_read_is_refused(run_cli, tmp_path):
    secret_file = tmp_path / "s3.json"
    secret_file.write_text(json.dumps({"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}))
    secret_file.chmod(0o644)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "isolation": "thread",
                "output": "",
                "spool_dir": str(tmp_path / "spool"),
                "sinks": [{"type": "s3", "bucket": "b-b-b", "credentials_file": "s3.json"}],
            }
        )
    )
    result = run_cli("serve", "--config", str(config), "--check-config")
    assert result.returncode == 2, result
    assert "credentials file is readable by every user" in result.stderr and str(secret_file) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and SECRET_KEY not in result.stderr


def test_check_config_builds_the_sinks_but_sends_nothing_and_says_it_sends_nothing(run_cli, tmp_path):
    config = tmp_path / "config.yaml"
    target = tmp_path / "documents"
    config.write_text(
        json.dumps(
            {
                "isolation": "thread",
                "output": "",
                "collectors": ["null"],
                "spool_dir": str(tmp_path / "spool"),
                "sinks": [{"type": "file", "directory": str(target)}],
            }
        )
    )
    result = run_cli("serve", "--config", str(config), "--check-config", "--log-level", "INFO")
    assert result.returncode == 0, result
    assert [sink["name"] for sink in json.loads(result.stdout)["sinks"]] == ["file"]
    assert "sending to" not in result.stderr
    assert not target.exists() or not any(target.iterdir())


def test_the_spool_survives_a_daemon_restart(start_daemon, own_moto, ticker, tmp_path):
    server = own_moto()
    server.stop()  # down from the start
    spool = tmp_path / "spool" / "s3"
    config = {
        "collectors": ["ticker"],
        "collector_paths": [str(ticker)],
        "spool_dir": str(tmp_path / "spool"),
        "sinks": [
            {
                "type": "s3",
                "endpoint_url": server.url,
                "bucket": "kept",
                "region": "us-east-1",
                "retry_initial": 0.1,
                "retry_max": 0.3,
                "timeout": 2,
            }
        ],
    }
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    first = start_daemon(config, env)
    first.wait(lambda: len(list(spool.glob("*.json"))) >= 2, 30, "two spooled documents")
    assert first.stop() == 0
    times = [json.loads(p.read_text())["harvester"]["collection_time"] for p in sorted(spool.glob("*.json"))]
    server.start()
    server.bucket("kept")
    second = start_daemon(config, env)
    node = os.uname().nodename
    second.wait(
        lambda: all(f"{node}/history/{t}.json" in server.objects("kept") for t in times),
        30,
        "the documents spooled before the restart",
    )
    assert "left in the spool" in second.log
    assert second.stop() == 0


def test_a_reload_with_other_sinks_swaps_them_and_keeps_the_same_ones(start_daemon, tmp_path):
    import signal

    spool = str(tmp_path / "spool")
    daemon = start_daemon(
        {"collectors": ["null"], "spool_dir": spool, "sinks": [{"type": "file", "directory": str(tmp_path / "a")}]}
    )
    daemon.wait(lambda: daemon.sink("sent_total", "file") >= 1, what="a delivery to a")
    config = tmp_path / "config.yaml"
    data = json.loads(config.read_text())
    data["sinks"] = [{"type": "file", "directory": str(tmp_path / "b"), "name": "bee"}]
    config.write_text(json.dumps(data))
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait(lambda: daemon.sink("sent_total", "bee") >= 1, what="a delivery to b")
    assert ("dwellir_harvester_sink_sent_total", (("sink", "file"),)) not in daemon.metrics()
    assert list((tmp_path / "b").rglob("latest.json"))
    sent = daemon.sink("sent_total", "bee")
    daemon.proc.send_signal(signal.SIGHUP)  # the same sinks: the same sender, its counts go on
    daemon.wait(lambda: daemon.count_reloads() >= 2, what="the second reload")
    daemon.wait(lambda: daemon.sink("sent_total", "bee") > sent, what="another delivery")
    assert daemon.log.count("sink bee: sending to") == 1  # the same sink after a reload: the same sender
    assert daemon.stop() == 0


def test_a_hung_endpoint_never_delays_a_harvest_or_the_http_endpoints(start_daemon, ticker, tmp_path):
    import socket
    import time

    hung = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        daemon = start_daemon(
            {
                "collectors": ["ticker"],
                "collector_paths": [str(ticker)],
                "spool_dir": str(tmp_path / "spool"),
                "sinks": [
                    {
                        "type": "s3",
                        "endpoint_url": f"http://127.0.0.1:{hung.getsockname()[1]}",
                        "bucket": "bbb",
                        "region": "us-east-1",
                        "timeout": 600,
                    }
                ],
            },
            {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        )
        daemon.wait(lambda: daemon.metrics()[("dwellir_harvester_harvests_total", ())] >= 4, 20, "four harvests")
        started = time.monotonic()
        status, _ = daemon.get("/metadata")
        assert status == 200 and time.monotonic() - started < 2
        assert daemon.sink("spooled", "s3") >= 3 and daemon.sink("sent_total", "s3") == 0
        assert daemon.stop() == 0  # a send in flight does not hold the exit back
    finally:
        hung.close()

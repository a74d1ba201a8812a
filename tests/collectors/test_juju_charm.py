"""``juju-charm`` on real snapshot files, in the format the charm helpers write (format 1)."""

from __future__ import annotations

import json

import pytest

from dwellir_harvester.collectors.juju_charm import JujuCharmCollector
from dwellir_harvester.lib.testing import run_collector

MODEL_UUID = "4a5f6e7d-8c9b-4a1e-b2c3-d4e5f6a7b8c9"


def snapshot(app: str, *, leader: bool = True, config=None, relations=None) -> dict:
    return {
        "format": 1,
        "updated": "2026-11-25T12:00:00.123456+00:00",
        "topology": {
            "model": "prod",
            "model_uuid": MODEL_UUID,
            "application": app,
            "unit": f"{app}/0",
            "charm": app,
            "leader": leader,
        },
        "config": {"rpc-port": 9944, "api-key": "<redacted>"} if config is None else config,
        "relations": (
            [{"endpoint": "grafana-agent", "interface": "cos_agent", "remote_application": "grafana-agent", "units": 1}]
            if relations is None
            else relations
        ),
    }


@pytest.fixture
def snapshot_dir(tmp_path):
    directory = tmp_path / "charms"
    directory.mkdir()
    (directory / "polkadot.json").write_text(json.dumps(snapshot("polkadot")))
    (directory / "grafana-agent.json").write_text(
        json.dumps(
            snapshot(
                "grafana-agent",
                leader=False,
                config={"log-level": "info", "scrape-interval": 60.5, "tls": False, "extra": None},
                relations=[
                    {"endpoint": "cos-agent", "interface": "cos_agent", "remote_application": "polkadot", "units": 3},
                    {
                        "endpoint": "send-remote-write",
                        "interface": "prometheus_remote_write",
                        "remote_application": "mimir",
                        "units": 2,
                    },
                ],
            )
        )
    )
    return directory


def without_format(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "format"}


def test_two_applications_sorted_by_name(snapshot_dir):
    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(snapshot_dir)})

    assert entry["meta"]["status"] == "success", entry
    data = entry["data"]
    assert list(data) == ["applications"]
    assert list(data["applications"]) == ["grafana-agent", "polkadot"]
    assert data["applications"]["polkadot"] == without_format(snapshot("polkadot"))
    grafana = data["applications"]["grafana-agent"]
    assert grafana["topology"]["leader"] is False
    assert grafana["config"] == {"extra": None, "log-level": "info", "scrape-interval": 60.5, "tls": False}
    assert [r["remote_application"] for r in grafana["relations"]] == ["polkadot", "mimir"]


def test_secrets_are_redacted_again_and_relation_data_is_dropped(tmp_path):
    pem = "-----BEGIN CERTIFICATE-----\nMIIBSECRETPEM\n-----END CERTIFICATE-----\n"
    leaky = snapshot(
        "polkadot",
        config={
            "rpc-port": 9944,
            "db-password": "SECRET-1",
            "api-key": "SECRET-2",
            "node_key": "SECRET-3",
            "AUTH_TOKEN": "SECRET-4",
            "client-secret": "SECRET-5",
            "tls-ca": pem,
            "chain": "polkadot",
        },
        relations=[
            {
                "endpoint": "grafana-agent",
                "interface": "cos_agent",
                "remote_application": "grafana-agent",
                "units": 1,
                "data": {"password": "SECRET-6"},
                "app_data": {"token": "SECRET-7"},
                "units_data": [{"secret": "SECRET-8"}],
            }
        ],
    )
    leaky["topology"]["ingress_secret"] = "SECRET-9"  # unknown keys are not kept either
    (tmp_path / "polkadot.json").write_text(json.dumps(leaky))

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(tmp_path)})

    assert entry["meta"]["status"] == "success", entry
    app = entry["data"]["applications"]["polkadot"]
    assert app["config"] == {
        "AUTH_TOKEN": "<redacted>",
        "api-key": "<redacted>",
        "chain": "polkadot",
        "client-secret": "<redacted>",
        "db-password": "<redacted>",
        "node_key": "<redacted>",
        "rpc-port": 9944,
        "tls-ca": "<redacted>",
    }
    assert app["relations"] == [
        {"endpoint": "grafana-agent", "interface": "cos_agent", "remote_application": "grafana-agent", "units": 1}
    ]
    assert set(app["topology"]) == {"model", "model_uuid", "application", "unit", "charm", "leader"}
    assert "SECRET" not in json.dumps(entry)


def _bad(**changes):
    document = snapshot("bad")
    for key, value in changes.items():
        if value is KeyError:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": 1, "updated": ', "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2, 3]", "holds a JSON list, not an object"),
        ('"just a string"', "holds a JSON str, not an object"),
        (_bad(format=KeyError), "has no 'format'"),
        (_bad(format=2), "has format 2; this collector reads format 1"),
        (_bad(format="1"), "has format '1'"),
        (_bad(format=True), "has format True"),
        (_bad(relations=KeyError, config=KeyError), "is missing 'config', 'relations'"),
        (_bad(updated="yesterday"), "updated must be an RFC 3339 date-time"),
        (_bad(updated="2026-11-25T12:00:00"), "updated must be an RFC 3339 date-time"),
        (_bad(topology=["polkadot"]), "topology must be an object, not list"),
        (_bad(topology={"model": "prod"}), "topology is missing 'model_uuid'"),
        (_bad(topology={**snapshot("x")["topology"], "leader": "yes"}), "topology.leader must be a bool, not str"),
        (_bad(config=["rpc-port"]), "config must be an object"),
        (_bad(config={"rpc": {"port": 1}}), "config['rpc'] must be a string, number, boolean or null"),
        (_bad(relations={"endpoint": "x"}), "relations must be a list, not dict"),
        (_bad(relations=["grafana-agent"]), "relations[0] must be an object, not str"),
        (_bad(relations=[{"endpoint": "x", "interface": "y", "remote_application": "z"}]), "missing 'units'"),
        (
            _bad(relations=[{"endpoint": "x", "interface": "y", "remote_application": "z", "units": -1}]),
            "relations[0].units must be a non-negative integer, not int",
        ),
        (_bad(config={"ratio": float("nan")}), "not valid JSON: NaN is not JSON"),
        ("\udcff".encode("utf-8", "surrogateescape"), "not valid JSON"),
    ],
)
def test_a_malformed_snapshot_is_partial_naming_the_file_and_keeping_the_others(snapshot_dir, content, message):
    path = snapshot_dir / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(snapshot_dir)})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert error.startswith(f"{path}: "), error
    assert message in error, error
    assert list(entry["data"]["applications"]) == ["grafana-agent", "polkadot"]


def test_a_missing_snapshot_dir_is_a_success_with_a_note(tmp_path):
    missing = tmp_path / "charms"

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(missing)})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["applications"] == {}
    assert str(missing) in entry["data"]["note"]


def test_an_empty_snapshot_dir_is_a_success_with_a_note(tmp_path):
    (tmp_path / ".polkadot.json.tmp").write_text("{")  # a write in progress is not a snapshot
    (tmp_path / "polkadot.json.tmp").write_text("{")
    (tmp_path / "README").write_text("hello")

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(tmp_path)})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["applications"] == {}
    assert str(tmp_path) in entry["data"]["note"]


def test_a_snapshot_dir_that_is_a_file_fails(tmp_path):
    path = tmp_path / "charms"
    path.write_text("{}")

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(path)})

    assert entry["meta"]["status"] == "failed", entry
    assert entry["meta"]["errors"] == [f"snapshot_dir {path} is not a directory"]


def test_the_default_snapshot_dir_is_the_charm_helpers_one():
    assert str(JujuCharmCollector().snapshot_dir) == "/var/lib/dwellir-harvester/charms"


def test_a_relation_without_a_remote_application_is_kept(tmp_path):
    directory = tmp_path / "charms"
    directory.mkdir()
    peer = {"endpoint": "cluster", "interface": "harvester-peers", "remote_application": None, "units": 0}
    (directory / "solo.json").write_text(json.dumps(snapshot("solo", relations=[peer])))
    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(directory)})
    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["applications"]["solo"]["relations"] == [peer]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(json.dumps(snapshot("bad"))[:-1] + ', "x": 1e999}', "is too large", id="1e999"),
        pytest.param('{"format": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply", id="deep"),
        pytest.param(
            '{"format": 1, "x": ' + "[" * 100 + "]" * 100 + "}", "nested more than 64", id="deep-but-parsable"
        ),
        pytest.param(json.dumps(snapshot("bad", config={"n": 10**1000})), "larger than 2**1024", id="1000-digits"),
        pytest.param('{"format": 1, "n": ' + "9" * 5000 + "}", "not valid JSON", id="5000-digits"),
    ],
)
def test_a_hostile_snapshot_makes_the_entry_partial_naming_the_file(snapshot_dir, content, message):
    path = snapshot_dir / "bad.json"
    path.write_text(content)

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(snapshot_dir)})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert error.startswith(f"{path}: ") and message in error, error
    assert sorted(entry["data"]["applications"]) == ["grafana-agent", "polkadot"]


def test_config_is_redacted_with_the_wider_word_list_and_key_material(tmp_path):
    config = {
        "db-pass": "s1",
        "seed-phrase": "s2",
        "jwt": "s3",
        "auth-header": "s4",
        "node-key-file": "/etc/k",
        "identity": "0x" + "cd" * 32,
        "network": "polkadot",
        "rpc-url": "http://u:s5@host:9944",
    }
    (tmp_path / "app.json").write_text(json.dumps(snapshot("app", config=config)))

    entry = run_collector(JujuCharmCollector, {"snapshot_dir": str(tmp_path)})

    shown = entry["data"]["applications"]["app"]["config"]
    assert shown == {
        "auth-header": "<redacted>",
        "db-pass": "<redacted>",
        "identity": "<redacted>",
        "jwt": "<redacted>",
        "network": "polkadot",
        "node-key-file": "<redacted>",
        "rpc-url": "http://<redacted>@host:9944",
        "seed-phrase": "<redacted>",
    }

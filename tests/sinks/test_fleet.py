"""``dwellir-harvester fleet``: a thousand nodes from a directory and from S3, hostile objects, fuzzed parsing."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from dwellir_harvester.cli._fleet import summarize
from tests.support import ACCESS_KEY, SECRET_KEY


def node_document(i: int, version: str = "1.14.0", age: float = 10) -> dict:
    stamp = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age)).isoformat(timespec="milliseconds")
    meta = {
        "collector_type": "blockchain",
        "collector_name": "evm",
        "collector_version": "1",
        "collection_time": stamp,
        "status": "success",
        "errors": [],
        "duration_ms": 1.0,
        "source": "builtin:",
    }
    return {
        "harvester": {
            "harvester-version": "0.1",
            "collection_time": stamp,
            "collectors_used": ["evm"],
            "duration_ms": 2.0,
            "problems": [],
        },
        "host": {"hostname": f"host-{i}"},
        "collectors": {
            "evm": {
                "meta": meta,
                "data": {
                    "blockchain": {
                        "blockchain_ecosystem": "ethereum",
                        "blockchain_network_name": "mainnet",
                        "chain_id": 1,
                    },
                    "workload": {"client_name": "geth", "client_version": version},
                    "sync": {"syncing": False, "best_block": 21_000_000 + i},
                },
            },
            "peers": {
                "meta": {**meta, "collector_type": "generic", "status": "failed" if i % 100 == 7 else "success"},
                "data": {},
            },
        },
    }


def fleet_of(n: int) -> dict[str, bytes]:
    """``n`` nodes' latest.json (by node name), one running another client version, one stale."""
    docs = {}
    for i in range(n):
        version = "1.13.0" if i == 3 else "1.14.0"
        docs[f"model-{i % 7}/unit-{i}"] = json.dumps(node_document(i, version, age=5000 if i == 5 else 10)).encode()
    return docs


HOSTILE = {
    "bad/not-json": b"{not json",
    "bad/list": b"[1, 2, 3]",
    "bad/deep": b"[" * 5000 + b"]" * 5000,
    "bad/binary": b"\xff\xfe\x00",
    "bad/nan": b'{"harvester": {"collection_time": NaN}, "collectors": {}}',
}


def check_report(report: dict, n: int) -> None:
    nodes = {node["node"]: node for node in report["nodes"]}
    assert len(nodes) == n + len(HOSTILE)
    assert nodes["model-1/unit-8"]["chains"][0]["best_block"] == 21_000_008
    assert nodes["model-1/unit-8"]["host"] == "host-8" and not nodes["model-1/unit-8"]["stale"]
    assert nodes["model-5/unit-5"]["stale"] is True
    assert nodes["model-0/unit-7"]["failing"] == ["peers"]
    for name in HOSTILE:
        assert nodes[name]["error"], name
    [disagree] = report["disagreements"]
    assert disagree["clients"] == {"geth 1.13.0": 1, "geth 1.14.0": n - 1}


def test_fleet_from_a_directory_of_1000_nodes_with_hostile_objects(run_cli, tmp_path):
    root = tmp_path / "fleet"
    for name, body in {**fleet_of(1000), **HOSTILE}.items():
        (root / name).mkdir(parents=True)
        (root / name / "latest.json").write_bytes(body)
        (root / name / "history").mkdir()
        (root / name / "history" / "x.json").write_bytes(body)
    (root / "big").mkdir()
    (root / "big" / "latest.json").write_bytes(b" " * (9 * 1024 * 1024))
    started = time.monotonic()
    result = run_cli("fleet", str(root), "--json")
    assert time.monotonic() - started < 60  # does not hang
    assert result.returncode == 1, result  # a stale node and unreadable ones
    report = result.json()
    nodes = {node["node"]: node for node in report["nodes"]}
    assert "more than the limit" in nodes["big"]["error"]
    del nodes["big"]
    report["nodes"] = list(nodes.values())
    check_report(report, 1000)

    table = run_cli("fleet", str(root), "--stale", "100000")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["HOST", "MODEL/UNIT", "CHAIN"]
    [row] = [line for line in lines if line.startswith("host-8 ")]
    cells = row.split()
    assert cells[:8] == ["host-8", "model-1/unit-8", "1", "mainnet", "geth", "1.14.0", "21000008", "synced"]
    assert cells[8].endswith("s") and cells[9] == "ok"
    assert any(line.startswith("versions differ on ethereum 1 mainnet: geth 1.13.0 on 1 node(s)") for line in lines)
    assert any("UNREADABLE: not JSON" in line for line in lines)


def test_fleet_from_s3_with_the_endpoint_of_a_configured_sink(run_cli, moto, tmp_path):
    bucket = f"fleet-{uuid.uuid4().hex[:8]}"
    moto.bucket(bucket)
    s3 = moto.client()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: s3.put_object(Bucket=bucket, Key=f"prod/{item[0]}/latest.json", Body=item[1]),
                {**fleet_of(1000), **HOSTILE}.items(),
            )
        )
    s3.put_object(Bucket=bucket, Key="prod/model-1/unit-8/history/2026.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="other/n/latest.json", Body=b"{}")
    creds = tmp_path / "s3.yaml"
    creds.write_text(f"access_key_id: {ACCESS_KEY}\nsecret_access_key: {SECRET_KEY}\n")
    creds.chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "sinks": [
                    {
                        "type": "s3",
                        "bucket": bucket,
                        "endpoint_url": moto.url,
                        "region": "us-east-1",
                        "credentials_file": "s3.yaml",
                    }
                ]
            }
        )
    )
    result = run_cli("fleet", f"s3://{bucket}/prod", "--json", "--config", str(config))
    assert result.returncode == 1, result
    check_report(result.json(), 1000)
    assert SECRET_KEY not in result.stdout + result.stderr


def test_fleet_errors_are_one_line(run_cli, tmp_path):
    result = run_cli("fleet", str(tmp_path / "missing"))
    assert result.returncode == 2 and "no such directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


_JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
_KEYS = st.sampled_from(
    [
        "harvester",
        "collectors",
        "host",
        "meta",
        "data",
        "blockchain",
        "workload",
        "sync",
        "status",
        "collector_type",
        "collection_time",
        "best_block",
        "chain_id",
        "hostname",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        _JSONISH.map(lambda v: json.dumps(v).encode()),
        st.recursive(
            st.one_of(st.just("blockchain"), st.integers(), st.text(max_size=5)),
            lambda c: st.dictionaries(_KEYS, c, max_size=5),
            max_leaves=25,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_fuzz_fleet_object_parsing_never_raises(raw):
    node = summarize("n", raw, time.time())
    assert node.node == "n"
    assert node.error is None or "\n" not in node.error
    for chain in node.chains:
        assert all(isinstance(v, str) and len(v) <= 120 for v in chain[:6])

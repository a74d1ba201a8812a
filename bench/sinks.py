#!/usr/bin/env python3
"""What sending costs: daemon CPU per harvest with the ``s3`` sink on and off; ``fleet`` over 1,000 and 10,000 nodes.

    python3 bench/sinks.py [--quick] [--harvests N]

The original harvester has no sinks and no ``fleet``: what is compared is ours with the ``s3`` sink
against ours without it. The S3 endpoint is moto's standalone server (``moto_server``) on a loopback
port, from a third venv, ``bench/.venvs/moto`` (``pip install 'moto[server]'``); our venv gets the
``[s3]`` extra's client (``minio``) added.

(a) Our daemon (``serve --interval 0.2 --collectors host null``, default ``isolation: process``)
runs twice per round, sink off and on, the order alternating between rounds. After 5 warm-up
harvests, the daemon process's own CPU time (user + system, ``/proc/<pid>/stat``; the collector
workers are other processes and the same in both modes) is read, then again after N more harvests
(default 100; ``--quick`` 30): CPU per harvest. With the sink on, each harvest is 2 PUTs (its
``host`` data changes every harvest, so each makes a history object); a run where the sink did not
deliver every harvest is not counted.

(b) ``dwellir-harvester fleet s3://bucket/prefix --json`` over 1,000 and 10,000 generated
``latest.json`` objects (``--quick``: 1,000 only): wall time of 3 runs each, median; and the same
documents as a directory, for reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    VENVS,
    WORK,
    Venv,
    clean_env,
    ensure_venvs,
    fmt_ms,
    fmt_ratio,
    log,
    machine_info,
    median,
    print_machine,
    report_and_save,
    rounds,
    run_timed,
    table,
)

LISTENING = re.compile(r"listening on http://[^\s]+?:(?P<port>\d+) ")
BUCKET = "bench-fleet"
KEYS = {"AWS_ACCESS_KEY_ID": "AKIABENCH000000000001", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _pip(python: Path, *args: str) -> None:
    logfile = VENVS / "sinks.pip.log"
    with logfile.open("a") as out:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True, stdout=out, stderr=out)


def moto_venv() -> Path:
    """``bench/.venvs/moto`` with moto's server; returns its python."""
    venv = VENVS / "moto"
    python = venv / "bin" / "python"
    if not (venv / ".bench-installed").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        log(f"bench: pip install 'moto[server]' into {venv}")
        _pip(python, "moto[server]>=5.0")
        (venv / ".bench-installed").write_text("moto[server]\n")
    return python


def with_s3_extra(ours: Venv) -> None:
    probe = subprocess.run([str(ours.python), "-c", "import minio"], capture_output=True, check=False)
    if probe.returncode != 0:
        log("bench: adding the [s3] extra's client (minio) to the ours venv")
        _pip(ours.python, "minio>=7.2,<8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(python: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    moto = Path(python).parent / "moto_server"
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


UPLOAD = """
import json, sys, boto3
from concurrent.futures import ThreadPoolExecutor
url, bucket, prefix, directory = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
import os
names = sorted(n for n in os.listdir(directory) if not n.startswith(".")) if os.path.isdir(directory) else []
def put(name):
    with open(os.path.join(directory, name, "latest.json"), "rb") as f:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}/latest.json", Body=f.read())
with ThreadPoolExecutor(32) as pool:
    list(pool.map(put, names))
"""


def documents(count: int) -> Path:
    """``count`` node directories, each with a ``latest.json`` (a realistic document of about 3 KB)."""
    root = WORK / "sinks" / f"fleet-{count}"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    for i in range(count):
        meta = {
            "collector_type": "blockchain",
            "collector_name": "evm",
            "collector_version": "1.0.0",
            "collection_time": stamp,
            "status": "success",
            "errors": [],
            "duration_ms": 3.0,
            "source": "builtin:",
        }
        document = {
            "harvester": {
                "harvester-version": "0.1.0",
                "collection_time": stamp,
                "collectors_used": ["host", "evm"],
                "duration_ms": 12.0,
                "problems": [],
            },
            "host": {"hostname": f"node-{i:05d}", "kernel": {"release": "6.8.0"}, "cpu": {"cores": 16}},
            "collectors": {
                "evm": {
                    "meta": meta,
                    "data": {
                        "blockchain": {
                            "blockchain_ecosystem": "ethereum",
                            "blockchain_network_name": "mainnet",
                            "chain_id": 1,
                        },
                        "workload": {"client_name": "Geth", "client_version": "v1.14.8" if i % 50 else "v1.14.7"},
                        "sync": {"syncing": False, "best_block": 21_000_000 + i},
                        "peers": 50,
                        "padding": "x" * 2000,
                    },
                }
            },
        }
        node = root / f"model-{i % 20:02d}-unit-{i:05d}"
        node.mkdir(parents=True)
        (node / "latest.json").write_text(json.dumps(document))
    (root / ".complete").write_text("")
    return root


def metric(port: int, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    match = re.search(rf"^{re.escape(name)} (\S+)$", body, re.M)
    return float(match[1]) if match else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def daemon_cpu(ours: Venv, url: str | None, harvests: int, run: int) -> tuple[float, str | None]:
    """CPU seconds per harvest of one daemon run; the error when the run does not count."""
    work = WORK / "sinks" / f"daemon-{run}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config: dict[str, Any] = {"spool_dir": str(work / "spool")}
    if url:
        config["sinks"] = [
            {
                "type": "s3",
                "endpoint_url": url,
                "bucket": BUCKET,
                "region": "us-east-1",
                "prefix": f"cpu-{run}",
                "retry_initial": 0.1,
                "retry_max": 1,
            }
        ]
    (work / "config.yaml").write_text(json.dumps(config))
    log_path = work / "daemon.log"
    command = [
        ours.harvester,
        "serve",
        "--config",
        str(work / "config.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--output",
        "",
        "--interval",
        "0.2",
        "--collectors",
        "host",
        "null",
    ]
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file, cwd=WORK, env=clean_env(**KEYS))
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            match = LISTENING.search(log_path.read_text())
            port = int(match["port"]) if match else None
            time.sleep(0.02)
        if port is None:
            return 0.0, f"daemon did not start: see {log_path}"
        while metric(port, "dwellir_harvester_harvests_total") < 5:
            time.sleep(0.01)
        start_n, start_cpu = metric(port, "dwellir_harvester_harvests_total"), cpu_seconds(proc.pid)
        while (n := metric(port, "dwellir_harvester_harvests_total")) < start_n + harvests:
            time.sleep(0.01)
        used = cpu_seconds(proc.pid) - start_cpu
        if url:
            time.sleep(0.5)
            sent = metric(port, 'dwellir_harvester_sink_sent_total{sink="s3"}')
            if sent < n - 1:
                return 0.0, f"sink on: {sent:g} of {n:g} harvests delivered (see {log_path})"
        return used / (n - start_n), None
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 harvests per run, 2 rounds, fleet of 1,000 only")
    parser.add_argument("--harvests", type=int, help="harvests measured per daemon run")
    args = parser.parse_args()
    harvests = args.harvests or (30 if args.quick else 100)
    venvs = ensure_venvs()
    ours = venvs["ours"]
    with_s3_extra(ours)
    moto_python = moto_venv()
    info = machine_info(venvs)
    print_machine(info)
    moto, url = start_moto(moto_python)
    errors: list[str] = []
    try:
        subprocess.run([str(moto_python), "-c", UPLOAD, url, BUCKET, "none", "-"], check=True, env=clean_env(**KEYS))
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        for n, side in rounds(["off", "on"], 2 if args.quick else 4):
            log(f"daemon, s3 sink {side}, round {n + 1}: {harvests} harvests")
            value, error = daemon_cpu(ours, url if side == "on" else None, harvests, len(cpu["off"]) + len(cpu["on"]))
            if error:
                errors.append(error)
            else:
                cpu[side].append(value)
        rows = [[side, len(v), fmt_ms(median(v)) if v else "-"] for side, v in cpu.items()]
        print(f"daemon CPU per harvest (host + null, interval 0.2 s, after 5 warm-up harvests; {harvests} per run)")
        print(table(["s3 sink", "runs", "median CPU (ms)"], rows))
        if cpu["on"] and cpu["off"]:
            extra = (median(cpu["on"]) - median(cpu["off"])) * 1000
            print(
                f"the s3 sink costs {extra:.2f} ms of daemon CPU per harvest "
                f"(off/on ratio {fmt_ratio(median(cpu['off']), median(cpu['on']))})"
            )

        fleet: dict[str, dict[str, list[float]]] = {}
        for count in (1000,) if args.quick else (1000, 10000):
            root = documents(count)
            prefix = f"fleet-{count}"
            log(f"uploading {count} documents to s3://{BUCKET}/{prefix}")
            subprocess.run(
                [str(moto_python), "-c", UPLOAD, url, BUCKET, prefix, str(root)], check=True, env=clean_env(**KEYS)
            )
            for source in (f"s3://{BUCKET}/{prefix}", str(root)):
                kind = "s3" if source.startswith("s3://") else "directory"
                for _ in range(3):
                    out = WORK / "sinks" / "fleet.json"
                    result = run_timed(
                        [ours.harvester, "fleet", source, "--json", "--stale", "1e7"],
                        stdout=out,
                        env=clean_env(AWS_ENDPOINT_URL=url, **KEYS),
                        timeout=600,
                    )
                    nodes = len(json.loads(out.read_text())["nodes"]) if result.returncode == 0 else 0
                    if nodes != count:
                        errors.append(f"fleet {source}: exit {result.returncode}, {nodes} of {count} nodes")
                        continue
                    fleet.setdefault(f"{kind} {count}", {}).setdefault("wall", []).append(result.wall)
                    fleet[f"{kind} {count}"].setdefault("cpu", []).append(result.cpu)
        print("dwellir-harvester fleet SOURCE --json (median of 3)")
        print(
            table(
                ["source, objects", "wall (ms)", "CPU (ms)"],
                [[k, fmt_ms(median(v["wall"])), fmt_ms(median(v["cpu"]))] for k, v in fleet.items()],
            )
        )
    finally:
        moto.terminate()
        moto.wait(10)
    report_and_save("sinks", errors, {"machine": info, "quick": args.quick, "cpu": cpu, "fleet": fleet})
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The daemon: /metadata throughput and latency, and /healthz under floods, ours against the original 0.0.5.

    python3 bench/daemon.py [--quick] [--duration S]

Both daemons harvest the same collectors (``host`` and ``null``) and listen on free loopback ports:

    original: dwellir-harvester-daemon --collectors host null --host 127.0.0.1 --port P --interval 300 --output F
    ours:     dwellir-harvester serve  --collectors host null --host 127.0.0.1 --port P --interval 300 --output F

Once /metadata answers 200 on both (and a settle pause: the original harvests twice at start), each
case runs for a fixed duration per daemon, the daemons alternating which goes first:
1 and 16 concurrent clients, then the same with 8 idle connections held open (4 that send nothing,
4 that send half a request line). Each client is its own process (multiprocessing) with a minimal
HTTP/1.1 client on a raw socket: it keeps the connection when the server allows (ours: HTTP/1.1
keep-alive) and reconnects when the server closes it (the original: HTTP/1.0, one request per
connection); latency includes that connect. Socket timeout 3 s: a stalled server shows as timeouts
and near-zero throughput, never as a hung bench. Throughput counts 200 responses completed within
the duration.

Then two floods, each held for a fixed time per daemon while a fresh client asks for /healthz every
0.1 s (a new connection each time, 3 s timeout): 1,000 idle connections, and a 600-socket slowloris
(each sends a request head one byte per second). Reported: probes answered, their latency, and
timeouts. Both daemons get SIGTERM at the end (SIGKILL after 10 s), also on errors.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    SIDES,
    WORK,
    Venv,
    clean_env,
    ensure_venvs,
    fmt_ms,
    fmt_ratio,
    log,
    machine_info,
    percentile,
    print_machine,
    save_results,
    table,
)

HOST = "127.0.0.1"
PATH = "/metadata"
CLIENT_TIMEOUT = 3.0
IDLE_CONNECTIONS = 8
READY_TIMEOUT = 120.0
SETTLE_SECONDS = 3.0
STOP_GRACE = 10.0
PROBE_INTERVAL = 0.1
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
# (label, sockets, slowloris): a fresh client's /healthz while these are held
FLOODS = (
    ("/healthz during 1,000 idle connections", 1000, False),
    ("/healthz during a 600-socket slowloris", 600, True),
)
# (label, clients, hold idle connections, send "Connection: close")
CASES = (
    ("1 client", 1, False, False),
    ("16 clients", 16, False, False),
    ("1 client + 8 idle conns", 1, True, False),
    ("16 clients + 8 idle conns", 16, True, False),
    ("16 clients, Connection: close", 16, False, True),
)


# --- a minimal HTTP client -----------------------------------------------------------------------


class Client:
    """One connection at a time; keeps it alive when the server allows, reconnects when it closes."""

    def __init__(self, port: int, timeout: float, close: bool = False) -> None:
        self.port, self.timeout = port, timeout
        self.one_shot = close
        extra = "Connection: close\r\n" if close else ""
        self.request_bytes = (
            f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: dwellir-bench\r\nAccept: */*\r\n{extra}\r\n"
        ).encode()
        self.sock: socket.socket | None = None
        self.connects = 0

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connects += 1
        self.sock = sock
        return sock

    def get(self) -> tuple[int, int]:
        """``(status, body bytes)`` of one GET; raises ``OSError`` (``TimeoutError`` on a timeout)."""
        reused = self.sock is not None
        try:
            return self._exchange(self.sock or self._connect())
        except (ConnectionError, _ClosedEarlyError):
            if not reused:
                raise
            self.close()  # the server closed an idle keep-alive connection: retry once, like any client
            return self._exchange(self._connect())

    def _exchange(self, sock: socket.socket) -> tuple[int, int]:
        # Lean on purpose: the fewer cycles the load generator spends per request, the more of the two
        # CPUs the server gets. Status and Content-Length are found with bytes.find, not a header dict.
        sock.sendall(self.request_bytes)
        buf = b""
        end = -1
        while end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                raise _ClosedEarlyError
            buf = buf + chunk if buf else chunk
            end = buf.find(b"\r\n\r\n")
        status = int(buf[9:12])
        head = buf[:end]
        if b"\r\nContent-Length:" not in head:  # the usual spelling first; any other case the slow way
            head = (
                head.lower()
                .replace(b"\r\ncontent-length:", b"\r\nContent-Length:")
                .replace(b"\r\nconnection: close", b"\r\nConnection: close")
            )
        keep = not self.one_shot and buf.startswith(b"HTTP/1.1") and b"\r\nConnection: close" not in head
        at = head.find(b"\r\nContent-Length:")
        received = len(buf) - end - 4
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            size = int(head[at + 17 : stop if stop >= 0 else len(head)])
            while received < size:
                chunk = sock.recv(min(65536, size - received))
                if not chunk:
                    self.close()
                    raise ConnectionResetError("closed in the middle of the body")
                received += len(chunk)
        else:  # no length: the body runs to the end of the connection
            while chunk := sock.recv(65536):
                received += len(chunk)
            keep = False
        if not keep:
            self.close()
        return status, received


class _ClosedEarlyError(ConnectionError):
    """The connection closed before a response header arrived."""


def client_worker(port: int, start_at: float, duration: float, timeout: float, close: bool, queue: Any) -> None:
    """Send GETs back to back from ``start_at`` for ``duration`` seconds; report counts and latencies."""
    client = Client(port, timeout, close)
    latencies: list[float] = []
    ok = late = timeouts = 0
    errors: Counter[str] = Counter()
    body_bytes = 0
    time.sleep(max(0.0, start_at - time.monotonic()))
    end = start_at + duration
    while True:
        t0 = time.monotonic()
        if t0 >= end:
            break
        try:
            status, size = client.get()
        except TimeoutError:
            timeouts += 1
            client.close()
            continue
        except (OSError, ValueError, IndexError) as err:
            errors[type(err).__name__] += 1
            client.close()
            time.sleep(0.01)  # a refused or reset connection must not become a busy loop
            continue
        t1 = time.monotonic()
        if status != 200:
            errors[f"HTTP {status}"] += 1
            continue
        body_bytes = size
        latencies.append(t1 - t0)
        if t1 <= end:
            ok += 1
        else:
            late += 1
    client.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put(
        {
            "latencies": latencies,
            "ok": ok,
            "late": late,
            "timeouts": timeouts,
            "errors": dict(errors),
            "connects": client.connects,
            "body_bytes": body_bytes,
            "cpu": usage.ru_utime + usage.ru_stime,
        }
    )


# --- daemons -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class Daemon:
    def __init__(self, venv: Venv) -> None:
        self.side = venv.side
        self.port = free_port()
        self.dir = WORK / "daemon"
        self.dir.mkdir(parents=True, exist_ok=True)
        output = self.dir / f"{self.side}-harvest.json"
        common = ["--collectors", "host", "null", "--host", HOST, "--port", str(self.port), "--interval", "300"]
        if venv.side == "original":
            self.cmd = [venv.bin("dwellir-harvester-daemon"), *common, "--output", str(output)]
        else:
            self.cmd = [venv.harvester, "serve", *common, "--output", str(output)]
        self.log = self.dir / f"{self.side}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_after = math.nan
        self.body_bytes = 0
        self.stop_info: dict[str, Any] = {}

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                cwd=WORK,
                start_new_session=True,  # the bench's Ctrl-C reaches the bench, which stops the daemons
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def probe(self) -> bool:
        """One GET of /metadata: True on 200 (and the first time, note how long start-up took)."""
        client = Client(self.port, 2.0)
        try:
            status, size = client.get()
        except OSError:
            return False
        finally:
            client.close()
        if status != 200:
            return False
        if math.isnan(self.ready_after):
            self.ready_after = time.monotonic() - self.started
        self.body_bytes = size
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Poll /metadata until it answers 200; False if the daemon exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if self.probe():
                return True
            time.sleep(0.05)
        return False

    def cpu_seconds(self) -> float:
        """user + system CPU seconds of the daemon so far (from /proc)."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE seconds; records how long it took."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None and not self.stop_info:
                self.stop_info = {"how": f"had already exited with status {self.proc.returncode}"}
            return
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_GRACE)
            self.stop_info = {"how": "SIGTERM", "seconds": time.monotonic() - t0, "returncode": code}
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
            self.stop_info = {"how": "SIGKILL after SIGTERM was ignored", "seconds": STOP_GRACE, "returncode": code}


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that never finish a request: half send nothing, half half a request line."""
    idle = []
    for i in range(count):
        try:
            sock = socket.create_connection((HOST, port), timeout=CLIENT_TIMEOUT)
            if i % 2:
                sock.sendall(b"GET /metad")
            idle.append(sock)
        except OSError:
            pass  # a server that does not accept any more is the point of this case
    return idle


def raise_open_files() -> None:
    """The floods hold 1,600 sockets: raise this process's soft limit of open files to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def open_flood(port: int, count: int) -> list[socket.socket]:
    """``count`` non-blocking connection attempts: a server that stops accepting cannot stall the bench."""
    socks = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((HOST, port))
        socks.append(sock)
    return socks


def connected(socks: list[socket.socket], wait: float = 1.0) -> int:
    """How many of ``socks`` have completed their connection (within ``wait`` seconds)."""
    done, deadline = 0, time.monotonic() + wait
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], pending[:500], [], 0.05)
        for sock in writable:
            pending.remove(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done += 1
    return done


def slowloris(socks: list[socket.socket], stop: threading.Event) -> None:
    """Each second, send each socket the next byte of a request head that never ends."""
    started: set[int] = set()
    while not stop.is_set():
        for sock in socks:
            try:
                if id(sock) in started:
                    sock.send(b"a")
                elif sock.send(SLOW_HEAD) > 0:
                    started.add(id(sock))
            except OSError:
                pass
        stop.wait(1.0)


def probe_healthz(port: int, timeout: float) -> float | None:
    """Seconds a fresh client takes to get /healthz answered with 200, or None (timeout or error)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while time.monotonic() - t0 < timeout:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    took = time.monotonic() - t0
    return took if reply.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) and took < timeout else None


def run_flood(daemon: Daemon, count: int, slow: bool, duration: float) -> dict[str, Any]:
    socks = open_flood(daemon.port, count)
    stop = threading.Event()
    trickler = threading.Thread(target=slowloris, args=(socks, stop), daemon=True) if slow else None
    try:
        opened = connected(socks)
        if trickler is not None:
            trickler.start()
        latencies: list[float] = []
        probes = 0
        end = time.monotonic() + duration
        while time.monotonic() < end:
            probes += 1
            took = probe_healthz(daemon.port, CLIENT_TIMEOUT)
            if took is not None:
                latencies.append(took)
            time.sleep(PROBE_INTERVAL)
    finally:
        stop.set()
        if trickler is not None:
            trickler.join(5)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
    return {
        "sockets": count,
        "connected": opened,
        "probes": probes,
        "answered": len(latencies),
        "p50": percentile(latencies, 50),
        "max": max(latencies) if latencies else float("nan"),
        "alive_after": daemon.alive(),
    }


def run_case(daemon: Daemon, clients: int, duration: float, idle: bool, close: bool = False) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    idle_socks = open_idle(daemon.port, IDLE_CONNECTIONS) if idle else []
    if idle:
        time.sleep(0.5)  # let the server take them in
    start_at = time.monotonic() + 0.5
    workers = [
        ctx.Process(target=client_worker, args=(daemon.port, start_at, duration, CLIENT_TIMEOUT, close, queue))
        for _ in range(clients)
    ]
    for w in workers:
        w.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    cpu0 = daemon.cpu_seconds()
    time.sleep(duration)
    cpu1 = daemon.cpu_seconds()
    reports = [queue.get(timeout=duration + 4 * CLIENT_TIMEOUT + 30) for _ in workers]
    for w in workers:
        w.join(10)
    for sock in idle_socks:
        with contextlib.suppress(OSError):
            sock.close()
    latencies = [x for r in reports for x in r["latencies"]]
    errors: Counter[str] = Counter()
    for r in reports:
        errors.update(r["errors"])
    ok = sum(r["ok"] for r in reports)
    return {
        "clients": clients,
        "idle_opened": len(idle_socks),
        "duration": duration,
        "ok": ok,
        "late": sum(r["late"] for r in reports),
        "rps": ok / duration,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": max(latencies) if latencies else float("nan"),
        "timeouts": sum(r["timeouts"] for r in reports),
        "errors": dict(errors),
        "connects": sum(r["connects"] for r in reports),
        "body_bytes": max((r["body_bytes"] for r in reports), default=0),
        "server_cpu_pct": (cpu1 - cpu0) / duration * 100,
        "clients_cpu_pct": sum(r["cpu"] for r in reports) / duration * 100,
        "alive_after": daemon.alive(),
    }


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s per case instead of 5")
    parser.add_argument("--duration", type=float, help="seconds per case and daemon")
    args = parser.parse_args()
    duration = args.duration or (2.0 if args.quick else 5.0)
    signal.signal(signal.SIGTERM, _raise_exit)
    raise_open_files()

    venvs = ensure_venvs()
    info = machine_info(venvs)
    print_machine(info)
    print(
        f"{duration:g} s per case and daemon, clients are processes, socket timeout {CLIENT_TIMEOUT:g} s, "
        f"daemons alternate which goes first"
    )
    print()

    daemons = {side: Daemon(venvs[side]) for side in SIDES}
    results: dict[str, dict[str, Any]] = {}
    floods: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    try:
        for d in daemons.values():
            log(f"starting {d.side}: {' '.join(d.cmd)}")
            d.start()
        waiting, deadline = list(daemons.values()), time.monotonic() + READY_TIMEOUT
        while waiting:  # poll both together, so each one's start-up time is its own
            for d in list(waiting):
                if not d.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the {d.side} daemon did not answer 200 on {PATH} (log: {d.log})")
                if d.probe():
                    waiting.remove(d)
                    log(f"{d.side} ready after {d.ready_after:.2f} s ({d.body_bytes} bytes)")
            time.sleep(0.05)
        time.sleep(SETTLE_SECONDS)
        for side in SIDES:
            log(f"warm-up {side} (1 s, discarded)")
            run_case(daemons[side], 1, 1.0, False)
        for i, (label, clients, idle, close) in enumerate(CASES):
            results[label] = {}
            for side in SIDES if i % 2 == 0 else tuple(reversed(SIDES)):
                d = daemons[side]
                if not d.alive():
                    problems.append(f"{label} {side}: the daemon is not running")
                    continue
                res = run_case(d, clients, duration, idle, close)
                results[label][side] = res
                log(
                    f"  {label} {side}: {res['rps']:.0f} req/s, p50 {fmt_ms(res['p50'])} ms, "
                    f"p99 {fmt_ms(res['p99'])} ms, {res['timeouts']} timeouts, errors {res['errors'] or 0}, "
                    f"server CPU {res['server_cpu_pct']:.0f}%, clients CPU {res['clients_cpu_pct']:.0f}%"
                )
                if idle:  # give a stalled server its connections back before the next case
                    recovered = d.wait_ready(30.0)
                    res["recovered"] = recovered
                    if not recovered:
                        problems.append(f"{label} {side}: did not answer again within 30 s after the idle case")
                time.sleep(0.5)
        for i, (label, count, slow) in enumerate(FLOODS):
            floods[label] = {}
            for side in SIDES if i % 2 == 0 else tuple(reversed(SIDES)):
                d = daemons[side]
                if not d.alive():
                    problems.append(f"{label} {side}: the daemon is not running")
                    continue
                res = run_flood(d, count, slow, duration)
                floods[label][side] = res
                log(
                    f"  {label} {side}: {res['answered']}/{res['probes']} probes answered, "
                    f"p50 {fmt_ms(res['p50'])} ms, max {fmt_ms(res['max'])} ms ({res['connected']} sockets connected)"
                )
                res["recovered"] = d.wait_ready(30.0)
                if not res["recovered"]:
                    problems.append(f"{label} {side}: did not answer again within 30 s after the flood")
                time.sleep(0.5)
    except Exception as err:
        problems.append(f"{type(err).__name__}: {err}")
    finally:
        for d in daemons.values():
            d.stop()

    print(f"GET {PATH}: throughput (200 responses per second) and latency, {duration:g} s per case")
    rows = []
    for label, per_side in results.items():
        o, u = per_side.get("original"), per_side.get("ours")
        if not o or not u:
            continue
        rows.append(
            [
                label,
                f"{o['rps']:.0f}",
                f"{u['rps']:.0f}",
                fmt_ratio(u["rps"], o["rps"]),
                fmt_ms(o["p50"]),
                fmt_ms(u["p50"]),
                fmt_ms(o["p99"]),
                fmt_ms(u["p99"]),
                f"{o['timeouts']}/{sum(o['errors'].values())}",
                f"{u['timeouts']}/{sum(u['errors'].values())}",
            ]
        )
    print(
        table(
            [
                "case",
                "original req/s",
                "ours req/s",
                "ours/original",
                "orig p50 ms",
                "ours p50 ms",
                "orig p99 ms",
                "ours p99 ms",
                "orig timeouts/errors",
                "ours timeouts/errors",
            ],
            rows,
        )
    )
    print()
    print("where the CPU went (percent of one core), connections opened, idle connections accepted")
    rows = []
    for label, per_side in results.items():
        for side in SIDES:
            r = per_side.get(side)
            if r:
                rows.append(
                    [
                        f"{label}, {side}",
                        f"{r['server_cpu_pct']:.0f}%",
                        f"{r['server_cpu_pct'] / 100 * r['duration'] / r['ok'] * 1e6:.0f}" if r["ok"] else "-",
                        f"{r['clients_cpu_pct']:.0f}%",
                        r["connects"],
                        r["idle_opened"] if "idle" in label else "-",
                        ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "-",
                    ]
                )
    headers = ["case", "server CPU", "server CPU µs/request", "clients CPU", "connects", "idle open", "errors"]
    print(table(headers, rows))
    print()
    rows = [
        [
            side,
            f"{d.ready_after:.2f} s",
            d.body_bytes or "n/a",
            d.stop_info.get("how", "n/a"),
            f"{d.stop_info['seconds']:.2f} s" if "seconds" in d.stop_info else "-",
            d.stop_info.get("returncode", "-"),
        ]
        for side, d in daemons.items()
    ]
    print(table(["daemon", "first 200 after", "/metadata bytes", "stopped by", "stop took", "exit status"], rows))
    print()

    print(
        f"a fresh client's GET /healthz (new connection every {PROBE_INTERVAL:g} s, {CLIENT_TIMEOUT:g} s timeout) "
        f"while a flood is held for {duration:g} s"
    )
    rows = []
    for label, per_side in floods.items():
        o, u = per_side.get("original"), per_side.get("ours")
        if not o or not u:
            continue
        rows.append(
            [
                label,
                f"{o['answered']}/{o['probes']}",
                f"{u['answered']}/{u['probes']}",
                fmt_ms(o["p50"]),
                fmt_ms(u["p50"]),
                fmt_ms(o["max"]),
                fmt_ms(u["max"]),
                f"{o['connected']}/{u['connected']}",
            ]
        )
    print(
        table(
            [
                "flood",
                "original answered",
                "ours answered",
                "orig p50 ms",
                "ours p50 ms",
                "orig max ms",
                "ours max ms",
                "sockets connected (orig/ours)",
            ],
            rows,
        )
    )
    print()

    at16 = results.get("16 clients", {})
    if "original" in at16 and "ours" in at16:
        factor = at16["ours"]["rps"] / at16["original"]["rps"] if at16["original"]["rps"] else float("inf")
        verdict = "met" if factor >= 10 else "NOT met"
        print(f"goal >= 10x the original's throughput at 16 clients: {factor:.1f}x, {verdict}")
    for label, busy in (("1 client + 8 idle conns", "1 client"), ("16 clients + 8 idle conns", "16 clients")):
        u, base = results.get(label, {}).get("ours"), results.get(busy, {}).get("ours")
        if u and base:
            kept = u["rps"] / base["rps"] if base["rps"] else 0.0
            stalled = u["timeouts"] > 0 or kept < 0.5
            print(
                f"goal no stall with idle connections ({label}): ours keeps {kept:.0%} of its throughput, "
                f"{u['timeouts']} timeouts: {'NOT met' if stalled else 'met'}"
            )
    for label, per_side in floods.items():
        u = per_side.get("ours")
        if u:
            ok = u["answered"] == u["probes"] and u["max"] < 1.0
            print(
                f"goal a fresh client gets /healthz within 1 s ({label}): ours answered {u['answered']} of "
                f"{u['probes']}, slowest {fmt_ms(u['max'])} ms: {'met' if ok else 'NOT met'}"
            )
    slow = sorted({side for per_side in results.values() for side, r in per_side.items() if 0.038 <= r["p50"] <= 0.05})
    if slow:
        print(
            f"note: a p50 near 40 ms ({', '.join(slow)}) is the signature of Nagle's algorithm meeting the client's "
            "delayed ACK: the server sends the headers and the body in separate writes on a kept-alive "
            "connection without TCP_NODELAY, so the body waits for an ACK the client delays by 40 ms"
        )
    print()
    for line in problems:
        print(f"problem: {line}")
    path = save_results(
        "daemon",
        {
            "machine": info,
            "quick": args.quick,
            "duration": duration,
            "results": results,
            "floods": floods,
            "daemons": {
                s: {"cmd": d.cmd, "ready_after": d.ready_after, "stop": d.stop_info} for s, d in daemons.items()
            },
            "problems": problems,
        },
    )
    print(f"raw results: {path}; daemon logs: {WORK / 'daemon'}")
    complete = all(len(per_side) == 2 for per_side in [*results.values(), *floods.values()])
    complete = complete and len(results) == len(CASES) and len(floods) == len(FLOODS)
    return 0 if complete and not problems else 1


if __name__ == "__main__":
    sys.exit(main())

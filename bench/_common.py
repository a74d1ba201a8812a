"""Shared helpers of the benchmark scripts: the two venvs, timed child processes, statistics, tables.

Standard library only: the scripts run with the system ``python3`` and manage their venvs themselves.

- ``bench/.venvs/original``: ``pip install dwellir-harvester==0.0.5 dwellir-harvester-lib==0.0.5`` (PyPI).
- ``bench/.venvs/ours``: ``pip install ./harvester-lib ./harvester`` from this repository, non-editable;
  reinstalled when a hash of those two source trees differs from the one stored in the venv.

Both venvs are made by the interpreter that runs the script, so both sides run the same Python.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work"
RESULTS = WORK / "results"

ORIGINAL_PINS = ("dwellir-harvester==0.0.5", "dwellir-harvester-lib==0.0.5")
OURS_SOURCES = ("harvester-lib", "harvester")
SIDES = ("original", "ours")

# Variables that would change what either harvester does or which code it imports.
_SCRUBBED_PREFIXES = ("HARVESTER_", "DAEMON_AUTH_", "PYTHON")
_SKIP_DIRS = {"__pycache__", "build", "dist", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- venvs ---------------------------------------------------------------------------------------


class Venv(NamedTuple):
    side: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    @property
    def harvester(self) -> str:
        return self.bin("dwellir-harvester")


def _interpreter_id() -> str:
    return f"{os.path.realpath(sys.executable)} {sys.version}"


def source_hash() -> str:
    """A hash of every file of our two distributions' source trees (paths and contents)."""
    digest = hashlib.sha256()
    for top in OURS_SOURCES:
        root = REPO / top
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
            for name in sorted(filenames):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath, name)
                digest.update(str(path.relative_to(REPO)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _pip(venv: Venv, args: Sequence[str], logfile: Path) -> None:
    cmd = [str(venv.python), "-m", "pip", *args]
    with logfile.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"pip {' '.join(args)} failed in {venv.path} (see {logfile}):\n{tail}")


def _create(venv: Venv) -> None:
    if venv.path.exists():
        shutil.rmtree(venv.path)
    log(f"bench: creating venv {venv.path} with {sys.executable}")
    subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True)
    (venv.path / ".bench-python").write_text(_interpreter_id())


def _usable(venv: Venv) -> bool:
    marker = venv.path / ".bench-python"
    return venv.python.exists() and marker.exists() and marker.read_text() == _interpreter_id()


def _ensure_original(venv: Venv) -> None:
    logfile = VENVS / "original.pip.log"
    marker = venv.path / ".bench-installed"
    want = " ".join(ORIGINAL_PINS)
    if _usable(venv) and marker.exists() and marker.read_text() == want:
        return
    _create(venv)
    log(f"bench: pip install {want} into {venv.path} (log: {logfile})")
    _pip(venv, ["install", *ORIGINAL_PINS], logfile)
    marker.write_text(want)


def _ensure_ours(venv: Venv) -> None:
    logfile = VENVS / "ours.pip.log"
    marker = venv.path / ".bench-source-hash"
    wanted = source_hash()
    if _usable(venv) and marker.exists() and marker.read_text() == wanted:
        return
    if not _usable(venv):
        _create(venv)
    else:
        log("bench: our source tree changed; reinstalling")
        _pip(venv, ["uninstall", "-y", "dwellir-harvester", "dwellir-harvester-lib"], logfile)
    log(f"bench: pip install ./harvester-lib ./harvester into {venv.path} (log: {logfile})")
    _pip(venv, ["install", *(f"./{s}" for s in OURS_SOURCES)], logfile)
    marker.write_text(wanted)


def ensure_venvs() -> dict[str, Venv]:
    """Create or reuse both venvs (under a lock, so two scripts never build them at once).

    Exits with status 1 and the reason when a venv cannot be built (no PyPI, a broken build).
    """
    VENVS.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    venvs = {side: Venv(side, VENVS / side) for side in SIDES}
    try:
        with (VENVS / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _ensure_original(venvs["original"])
            _ensure_ours(venvs["ours"])
    except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
        log(f"bench: cannot set up the venvs, nothing measured: {err}")
        raise SystemExit(1) from err
    return venvs


def installed_versions(venv: Venv) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json\n"
        "names = ['dwellir-harvester', 'dwellir-harvester-lib', 'jsonschema', 'psutil', 'PyYAML',\n"
        "         'prometheus-client', 'httptools']\n"
        "out = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(venv.python), "-c", code], capture_output=True, text=True, check=True, env=clean_env())
    versions: dict[str, str] = json.loads(proc.stdout)
    return versions


# --- environment and machine ---------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for measured children: no harvester, auth or PYTHON* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(extra)
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(venvs: dict[str, Venv]) -> dict[str, Any]:
    code = "import sys, platform; print(platform.python_implementation(), sys.version.split()[0])"
    pythons = {
        side: subprocess.run([str(v.python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        for side, v in venvs.items()
    }
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": pythons["ours"],
        "python_same_for_both": len(set(pythons.values())) == 1,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "versions": {side: installed_versions(v) for side, v in venvs.items()},
        "system_config_present": Path("/etc/dwellir-harvester").exists(),
        "loadavg_at_start": os.getloadavg(),
        "ours_source": _git_state(),
    }


def _git_state() -> dict[str, Any]:
    """The commit our venv was built from and whether the two source trees had uncommitted changes."""
    state: dict[str, Any] = {"source_hash": source_hash()[:16]}
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *OURS_SOURCES], cwd=REPO, capture_output=True, text=True
        )
        state["commit"] = head.stdout.strip() or "unknown"
        state["uncommitted_files"] = len(dirty.stdout.splitlines())
    except OSError:
        state["commit"] = "unknown"
    return state


def print_machine(info: dict[str, Any]) -> None:
    print(f"date: {info['date']}")
    print(
        f"machine: {info['cpus']} CPUs ({info['cpus_usable']} usable), {info['cpu_model']}, Linux {info['kernel']}; "
        f"Python: {info['python']} (same interpreter for both venvs: {info['python_same_for_both']})"
    )
    for side, versions in info["versions"].items():
        print(f"{side:>8}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    src = info["ours_source"]
    print(
        f"ours built from commit {src.get('commit')} (+{src.get('uncommitted_files', '?')} uncommitted files in "
        f"harvester-lib/ and harvester/), source hash {src['source_hash']}; "
        f"load average at start: {' '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"
    )
    if info["system_config_present"]:
        print("WARNING: /etc/dwellir-harvester exists; our runner reads its config files")
    print()


# --- timed child processes -----------------------------------------------------------------------


class RunResult(NamedTuple):
    wall: float  # seconds from spawn to reaped
    returncode: int | None  # None when killed at the timeout
    maxrss_kib: int  # the child's peak resident set size (ru_maxrss, KiB on Linux)
    cpu: float  # user + system seconds of the child
    timed_out: bool


def run_timed(
    cmd: Sequence[str],
    *,
    stdout: Path | None = None,
    stderr: Path | None = None,
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> RunResult:
    """Run ``cmd`` with output to files (or /dev/null) and reap it with ``os.wait4`` for its rusage.

    On timeout the child's process group is killed and ``timed_out`` is set.
    """
    out = stdout.open("wb") if stdout else open(os.devnull, "wb")  # noqa: SIM115 - closed below
    err = stderr.open("wb") if stderr else open(os.devnull, "wb")  # noqa: SIM115
    killed = threading.Event()
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env if env is not None else clean_env(),
            cwd=cwd or WORK,
            start_new_session=True,
        )

        def _kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, _kill)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
    finally:
        out.close()
        err.close()
    timed_out = killed.is_set()
    return RunResult(
        wall=wall,
        returncode=None if timed_out else proc.returncode,
        maxrss_kib=usage.ru_maxrss,
        cpu=usage.ru_utime + usage.ru_stime,
        timed_out=timed_out,
    )


# --- statistics and output -----------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt_ratio(numerator: float, denominator: float) -> str:
    if math.isnan(numerator) or math.isnan(denominator):
        return "n/a"
    if denominator == 0:
        return "inf" if numerator > 0 else "n/a"
    value = numerator / denominator
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def fmt_seconds(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value * 1000:.2f}" if value < 0.01 else f"{value * 1000:.1f}"


def fmt_mib(kib: float) -> str:
    return "n/a" if math.isnan(kib) else f"{kib / 1024:.1f} MiB"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_and_save(name: str, errors: list[str], data: dict[str, Any]) -> None:
    """Print the runs that were not counted, save the raw results and print where they went."""
    if errors:
        print("runs not counted:")
        for line in errors:
            print(f"  {line}")
    print(f"raw results: {save_results(name, data)}")


def save_results(name: str, data: dict[str, Any]) -> Path:
    """Write the raw results as JSON under bench/.work/results/ (and print the load average now)."""
    data.setdefault("machine", {})["loadavg_at_end"] = os.getloadavg()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-quick' if data.get('quick') else ''}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def rounds(sides: Sequence[str], count: int) -> Iterator[tuple[int, str]]:
    """``(round, side)`` pairs, alternating which side goes first each round (no order bias)."""
    for n in range(count):
        for side in sides if n % 2 == 0 else tuple(reversed(sides)):
            yield n, side


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps mtimes, so bytecode caches stay valid)."""
    if path.exists() and path.read_text() == text:
        return
    path.write_text(text)
    path.chmod(0o644)

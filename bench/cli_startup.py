#!/usr/bin/env python3
"""The runner's cold start: ``collect null --no-validate`` and ``collect host``, ours against the original.

    python3 bench/cli_startup.py [--quick] [--runs N]

Each venv's own ``dwellir-harvester`` console script runs the same command line (the original's CLI
takes the same ``collect NAME... --no-validate``), stdout to /dev/null. Two warm-up runs per command
and side fill the page cache and are discarded; then the sides alternate, each run a fresh process.
Reported: median wall time from spawn to exit, p90, peak RSS, and the ratio original / ours (>1 means
ours starts faster).

Then, for ``collect null --no-validate``, which modules each side imports (``-X importtime`` through
``PYTHONPROFILEIMPORTTIME=1``): whether jsonschema, psutil, yaml or prometheus_client appear (the goal
for ours: none), and ours' slowest imports.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _common import (
    SIDES,
    WORK,
    Venv,
    clean_env,
    ensure_venvs,
    fmt_mib,
    fmt_ratio,
    fmt_seconds,
    log,
    machine_info,
    median,
    percentile,
    print_machine,
    report_and_save,
    rounds,
    run_timed,
    table,
)

COMMANDS = {
    "collect null --no-validate": ["collect", "null", "--no-validate"],
    "collect host": ["collect", "host"],
}
HEAVY = ("jsonschema", "psutil", "yaml", "prometheus_client")
WARMUP = 2


def measure(venvs: dict[str, Venv], argv: list[str], runs: int) -> dict[str, dict[str, Any]]:
    out_dir = WORK / "cli_startup"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {side: {"walls": [], "rss_kib": [], "errors": []} for side in SIDES}
    plan = [(True, n, s) for n, s in rounds(SIDES, WARMUP)] + [(False, n, s) for n, s in rounds(SIDES, runs)]
    for is_warmup, _, side in plan:
        stderr = out_dir / f"{side}-{argv[1]}.stderr"
        run = run_timed([venvs[side].harvester, *argv], stderr=stderr, timeout=120)
        if run.timed_out or run.returncode != 0:
            problem = "timed out after 120 s" if run.timed_out else f"exit status {run.returncode}"
            log(f"  {' '.join(argv)} {side}: NOT COUNTED: {problem} (see {stderr})")
            results[side]["errors"].append(problem)
            continue
        if not is_warmup:
            results[side]["walls"].append(run.wall)
            results[side]["rss_kib"].append(run.maxrss_kib)
    return results


def import_profile(venv: Venv, argv: list[str]) -> dict[str, Any]:
    """Modules imported by one run, from ``-X importtime`` (self and cumulative microseconds)."""
    stderr = WORK / "cli_startup" / f"{venv.side}-{argv[1]}.importtime"
    env = clean_env(PYTHONPROFILEIMPORTTIME="1")
    run = run_timed([venv.harvester, *argv], stderr=stderr, env=env, timeout=120)
    modules: dict[str, tuple[int, int]] = {}
    for line in stderr.read_text(errors="replace").splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:") :].split("|")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        modules[parts[2]] = (int(parts[0]), int(parts[1]))
    heavy = {name: sorted(m for m in modules if m == name or m.startswith(name + ".")) for name in HEAVY}
    return {
        "returncode": run.returncode,
        "count": len(modules),
        "total_self_us": sum(s for s, _ in modules.values()),
        "heavy": heavy,
        "slowest": sorted(modules.items(), key=lambda kv: kv[1][0], reverse=True)[:10],
        "file": str(stderr),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 runs per command and side instead of 30")
    parser.add_argument("--runs", type=int, help="measured runs per command and side (at least 10)")
    args = parser.parse_args()
    runs = max(10, args.runs or (10 if args.quick else 30))

    venvs = ensure_venvs()
    info = machine_info(venvs)
    print_machine(info)
    print(
        f"runs per command and side: {runs} measured after {WARMUP} warm-up runs (discarded), sides alternating first"
    )
    print()

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for label, argv in COMMANDS.items():
        log(f"measuring `dwellir-harvester {label}`")
        results[label] = measure(venvs, argv, runs)

    rows = []
    for label, res in results.items():
        o, u = res["original"], res["ours"]
        rows.append(
            [
                label,
                fmt_seconds(median(o["walls"])),
                fmt_seconds(median(u["walls"])),
                fmt_ratio(median(o["walls"]), median(u["walls"])),
                fmt_seconds(percentile(o["walls"], 90)),
                fmt_seconds(percentile(u["walls"], 90)),
                fmt_mib(median(o["rss_kib"])),
                fmt_mib(median(u["rss_kib"])),
                f"{len(o['walls'])}/{len(u['walls'])}",
            ]
        )
    print("cold start of `dwellir-harvester <command>`: wall time from spawn to exit (median)")
    print(
        table(
            [
                "command",
                "original",
                "ours",
                "original/ours",
                "original p90",
                "ours p90",
                "original RSS",
                "ours RSS",
                "runs",
            ],
            rows,
        )
    )
    print()

    log("profiling imports (-X importtime)")
    argv = COMMANDS["collect null --no-validate"]
    profiles = {side: import_profile(venvs[side], argv) for side in SIDES}
    print("modules imported by `collect null --no-validate` (-X importtime, one run)")
    rows = [[name, *("yes" if profiles[s]["heavy"][name] else "no" for s in SIDES)] for name in HEAVY]
    rows.append(["modules imported (all)", *(str(profiles[s]["count"]) for s in SIDES)])
    rows.append(
        ["import time, sum of self", *(fmt_seconds(profiles[s]["total_self_us"] / 1e6) for s in SIDES)],
    )
    print(table(["module", "original", "ours"], rows))
    ours_heavy = [name for name in HEAVY if profiles["ours"]["heavy"][name]]
    verdict = "met" if not ours_heavy else f"NOT met: ours imports {', '.join(ours_heavy)}"
    print(f"goal (ours imports none of {', '.join(HEAVY)} for this verb): {verdict}")
    print()
    print("ours: the slowest imports of that run (self time; cumulative includes what each imports)")
    print(
        table(
            ["module", "self", "cumulative"],
            [[m, fmt_seconds(s / 1e6), fmt_seconds(c / 1e6)] for m, (s, c) in profiles["ours"]["slowest"]],
        )
    )
    print()

    errors = [f"{label} {side}: {e}" for label, res in results.items() for side in SIDES for e in res[side]["errors"]]
    report_and_save(
        "cli_startup",
        errors,
        {"machine": info, "quick": args.quick, "runs": runs, "warmup": WARMUP, "results": results, "imports": profiles},
    )
    incomplete = any(not res[side]["walls"] for res in results.values() for side in SIDES)
    incomplete = incomplete or any(p["returncode"] != 0 or not p["count"] for p in profiles.values())
    if incomplete:
        print("some case could not be measured (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

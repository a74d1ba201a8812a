"""Finding a node's process by name with psutil (imported only when a lookup runs)."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from dwellir_harvester.lib.redact import redact_argv


class NodeProcess(NamedTuple):
    """The process found for a ``process_name``: its binary and its (redacted) command line."""

    pid: int
    binary_path: str | None
    command_line: list[str]


def _matches(name: str, info: dict[str, Any]) -> bool:
    cmdline = info.get("cmdline") or []
    candidates = (
        info.get("name"),
        os.path.basename(info.get("exe") or ""),
        os.path.basename(cmdline[0]) if cmdline else None,
    )
    return name in candidates


def find_process(name: str) -> NodeProcess | None:
    """The oldest running process called ``name`` (its name, its binary's or its ``argv[0]``'s basename).

    The oldest, because a node that forks workers is their parent. Values psutil may not read
    (another user's process) are ``None``. Raises ``ImportError`` when psutil is missing.
    """
    import psutil

    found: list[dict[str, Any]] = []
    for proc in psutil.process_iter(["pid", "name", "exe", "cmdline", "create_time"]):
        info: dict[str, Any] = proc.info
        if _matches(name, info):
            found.append(info)
    if not found:
        return None
    best = min(found, key=lambda i: (i.get("create_time") or 0.0, i["pid"]))
    shown = redact_argv([str(arg) for arg in best.get("cmdline") or []])
    binary = best.get("exe") or (shown[0] if shown else None)
    return NodeProcess(int(best["pid"]), binary, shown)

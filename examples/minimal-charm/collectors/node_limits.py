"""``node-limits``: what a node on this machine runs into first (kernel, CPUs, memory, open files).

Run it on its own, from the charm's folder::

    python -m dwellir_harvester.lib.run node_limits:NodeLimitsCollector --collector-path collectors
"""

from __future__ import annotations

import os
import resource
from typing import Any

from dwellir_harvester.lib import CollectorFailedError, GenericCollector


def memory_total_kib(meminfo: str = "/proc/meminfo") -> int:
    """The machine's memory in KiB, from ``MemTotal`` in ``/proc/meminfo``."""
    with open(meminfo, encoding="ascii") as lines:
        for line in lines:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    raise CollectorFailedError(f"no MemTotal in {meminfo}")


class NodeLimitsCollector(GenericCollector):
    """The kernel, CPUs, memory and open-file limits a node process on this machine gets."""

    NAME = "node-limits"
    VERSION = "1.0.0"
    TIMEOUT = 5.0
    SCHEMA = {
        "type": "object",
        "properties": {
            "kernel": {"type": "string"},
            "cpus": {"type": "integer", "minimum": 1},
            "memory_total_kib": {"type": "integer", "minimum": 1},
            "open_files_soft": {"type": "integer"},
            "open_files_hard": {"type": "integer"},
        },
        "required": ["kernel", "cpus", "memory_total_kib", "open_files_soft", "open_files_hard"],
        "additionalProperties": False,
    }

    def collect(self) -> dict[str, Any]:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # -1: unlimited
        return {
            "kernel": os.uname().release,
            "cpus": os.cpu_count() or 1,
            "memory_total_kib": memory_total_kib(),
            "open_files_soft": soft,
            "open_files_hard": hard,
        }

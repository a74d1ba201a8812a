"""``host``: facts about this machine.

The keys the original harvester reported (``hostname``, ``kernel``, ``uptime``, ``lsb``,
``architecture``, ``processor``, ``cpu``, ``memory``) keep their names and meaning, so existing
consumers of the document's top-level ``host`` keep working; ``fqdn``, ``os``, ``disk`` and
``boot_time`` are new.
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable
from typing import Any

from dwellir_harvester.lib import CollectResult, GenericCollector


def _os_release() -> dict[str, str]:
    try:
        return platform.freedesktop_os_release()
    except OSError:
        return {}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _uptime() -> float:
    with open("/proc/uptime", encoding="utf-8") as f:
        return float(f.read().split()[0])


class HostCollector(GenericCollector):
    """Hostname, OS release, kernel, architecture, CPU, memory, disk of ``/``, uptime and load."""

    NAME = "host"
    VERSION = "2.0.0"
    COLLECTOR_TYPE = "host"
    TIMEOUT = 10.0

    def __init__(self, disk_path: str = "/") -> None:
        self.disk_path = disk_path

    def collect(self) -> CollectResult:
        """Collect this collector's data (see the module docstring)."""
        release = _os_release()
        data: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "fqdn": socket.getfqdn(),
            "os": {
                "id": release.get("ID"),
                "version_id": release.get("VERSION_ID"),
                "codename": release.get("VERSION_CODENAME"),
                "pretty_name": release.get("PRETTY_NAME"),
            },
            "lsb": {
                "id": release.get("ID"),
                "release": release.get("VERSION_ID"),
                "codename": release.get("VERSION_CODENAME", ""),
                "description": release.get("PRETTY_NAME"),
            },
            "kernel": {"release": platform.release(), "version": platform.version()},
            "architecture": platform.machine(),
            "processor": platform.processor() or "unknown",
        }
        errors: list[str] = []
        try:
            probes = self._probes()
        except ImportError as err:
            errors.append(f"cpu, memory, disk, boot_time: psutil is not available ({err})")
            probes = {"uptime": _uptime}
        for key, probe in probes.items():
            try:
                data[key] = probe()
            except Exception as err:  # noqa: BLE001 - one missing fact does not hide the others
                errors.append(f"{key}: {type(err).__name__}: {err}")
        return CollectResult(data, errors)

    def _probes(self) -> dict[str, Callable[[], Any]]:
        import psutil

        def cpu() -> dict[str, Any]:
            load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
            return {
                "model": _cpu_model(),
                "cores": psutil.cpu_count(logical=True),
                "physical_cores": psutil.cpu_count(logical=False),
                "load_avg": load,
            }

        def memory() -> dict[str, Any]:
            mem, swap = psutil.virtual_memory(), psutil.swap_memory()
            return {
                "total": mem.total,
                "available": mem.available,
                "used": mem.used,
                "free": mem.free,
                "percent_used": mem.percent,
                "swap_total": swap.total,
                "swap_used": swap.used,
                "swap_free": swap.free,
                "swap_percent_used": swap.percent,
            }

        def disk() -> dict[str, Any]:
            usage = psutil.disk_usage(self.disk_path)
            return {
                "path": self.disk_path,
                "total": usage.total,
                "used": usage.used,
                "free": usage.free,
                "percent_used": usage.percent,
            }

        def boot_time() -> float:
            return float(psutil.boot_time())

        return {"cpu": cpu, "memory": memory, "disk": disk, "uptime": _uptime, "boot_time": boot_time}

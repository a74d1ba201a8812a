"""An example third-party collector, registered through the ``dwellir_harvester.collectors`` entry point."""

from __future__ import annotations

import platform
import sys
from typing import Any

from dwellir_harvester.lib import GenericCollector

__all__ = ["PythonRuntimeCollector"]


class PythonRuntimeCollector(GenericCollector):
    """Which Python runs the harvester: implementation, version and executable."""

    NAME = "python-runtime"
    VERSION = "1.0.0"
    TIMEOUT = 5.0

    def collect(self) -> dict[str, Any]:
        return {
            "implementation": platform.python_implementation(),
            "version": platform.python_version(),
            "executable": sys.executable,
        }

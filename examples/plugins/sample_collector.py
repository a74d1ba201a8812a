"""A drop-in collector plugin: put this file in a plugin directory and it is discovered.

    dwellir-harvester collect sample --collector-path examples/plugins
    python -m dwellir_harvester.lib.run sample_collector:SampleCollector --collector-path examples/plugins \
        --option greeting=hi
"""

from __future__ import annotations

import os
import platform
from typing import Any

from dwellir_harvester.lib import CollectorFailedError, GenericCollector


class SampleCollector(GenericCollector):
    """Reports a greeting (an option) and a few facts about the process that ran it."""

    NAME = "sample"
    VERSION = "1.0.0"
    TIMEOUT = 5.0

    def __init__(self, greeting: str = "hello") -> None:
        if not isinstance(greeting, str) or not greeting:
            raise CollectorFailedError("option greeting must be a non-empty string")
        self.greeting = greeting

    def collect(self) -> dict[str, Any]:
        return {
            "greeting": self.greeting,
            "python_version": platform.python_version(),
            "pid": os.getpid(),
        }

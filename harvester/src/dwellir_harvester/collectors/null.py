"""``null``: a fixed payload, for smoke tests and CI."""

from __future__ import annotations

from typing import Any

from dwellir_harvester.lib import GenericCollector


class NullCollector(GenericCollector):
    """Always succeeds with the same small payload (the original harvester's, for comparisons)."""

    NAME = "null"
    VERSION = "1.0.0"
    TIMEOUT = 5.0

    def collect(self) -> dict[str, Any]:
        """Collect this collector's data (see the module docstring)."""
        return {"foo": "bar", "number": 42, "gasFee": "0.1"}

"""The daemon (placeholder until the daemon lands)."""

from __future__ import annotations

from typing import Any


def serve(settings: Any, flags: Any = None, check_only: bool = False, schema: Any = None) -> int:
    raise NotImplementedError("the daemon is not built yet")

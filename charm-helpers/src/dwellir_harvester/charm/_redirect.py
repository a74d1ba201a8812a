"""The seam ``dwellir_harvester.charm.testing`` uses to move a charm's Harvester paths into a test dir.

At run time nothing sets it and every path is used as given. A test sets it (through
``testing.harvester_sandbox``) around ``Context.run``; every ``Harvester`` built meanwhile re-roots
its absolute paths under the sandbox's root. Kept in a ``ContextVar`` so that nothing leaks between
threads or outlives the ``with`` block.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import NamedTuple


class Redirect(NamedTuple):
    """Where a sandbox puts a Harvester's files, and (optionally) the charm dir to resolve from."""

    root: Path
    charm_dir: Path | None = None

    def path(self, path: str | os.PathLike[str]) -> Path:
        """``path`` re-rooted under ``root``: ``/etc/x`` becomes ``<root>/etc/x``."""
        absolute = Path(os.path.abspath(os.fspath(path)))
        return self.root.joinpath(*absolute.parts[1:])


ACTIVE: ContextVar[Redirect | None] = ContextVar("dwellir_harvester_charm_redirect", default=None)

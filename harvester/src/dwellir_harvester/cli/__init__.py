"""The ``dwellir-harvester`` command line (also ``python -m dwellir_harvester.cli``).

``main(argv)`` runs it and returns the exit status; ``daemon_main`` is ``dwellir-harvester-daemon``;
``build_parser()`` is its argument parser.

``main`` does one thing before importing the rest of the command: for ``collect`` it forks the
collector worker at once (``dwellir_harvester.lib._prefork``), so that the worker imports the SDK
and the built-in collectors while the command imports itself and reads its config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "daemon_main", "main"]

#: This distribution, whose entry points are the built-in collectors a pre-started worker imports.
_DISTRIBUTION = "dwellir-harvester"


def _wants_worker(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is a ``collect`` that will run collectors in workers (as far as the flags say).

    The verb comes first (the common options belong to each verb); ``isolation: thread`` in a config
    file is only known later: then the worker is discarded unused.
    """
    words = list(argv)
    if words[:1] != ["collect"] or any(w in ("-h", "--help") for w in words):
        return False
    thread = [
        w for i, w in enumerate(words) if w == "--isolation=thread" or (w == "thread" and words[i - 1] == "--isolation")
    ]
    return not thread


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    import sys

    words = list(sys.argv[1:] if argv is None else argv)
    prestarted = None
    if _wants_worker(words):
        from dwellir_harvester.lib._prefork import prefork

        prestarted = prefork(_DISTRIBUTION)
    from ._main import main as run

    return run(words, prestarted=prestarted)


def daemon_main(argv: Sequence[str] | None = None) -> int:
    """``dwellir-harvester-daemon``: the same as ``dwellir-harvester serve``."""
    from ._main import daemon_main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    """The command line's argument parser."""
    from ._main import build_parser as build

    return build()

"""The ``dwellir-harvester`` command line (also ``python -m dwellir_harvester.cli``).

``main(argv)`` runs it and returns the exit status; ``daemon_main`` is ``dwellir-harvester-daemon``.
"""

from ._main import build_parser, daemon_main, main

__all__ = ["build_parser", "daemon_main", "main"]

"""The ``dwellir-harvester`` command line (also ``python -m dwellir_harvester.cli``).

``main(argv)`` runs it and returns the exit status; ``console()`` is the ``dwellir-harvester``
program (``main()``, then a quick exit); ``daemon_main`` is ``dwellir-harvester-daemon``;
``build_parser()`` is its argument parser.

``main`` does one thing before importing the rest of the command, or even the SDK: for ``collect``
it forks the collector worker at once (see ``dwellir_harvester.lib._prefork``), so that the worker
imports the SDK and the built-in collectors while the command imports itself and reads its config.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import argparse
    import socket

__all__ = ["build_parser", "console", "daemon_main", "main"]

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


def _fork_worker() -> tuple[int, socket.socket] | None:
    """Fork a collector worker now, importing nothing but ``os`` and ``socket`` here.

    Returns its pid and the harvester's end of its socket (None where the platform cannot fork).
    The child imports the SDK's worker and never returns to this code. Call it while the process
    runs a single thread.
    """
    import os
    import socket

    if not hasattr(os, "fork"):
        return None
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            from dwellir_harvester.lib.worker import become_worker

            become_worker(child, None, 0, "WARNING", warm_distribution=_DISTRIBUTION)
        finally:
            os._exit(70)  # only reached when the import failed: the child ends here all the same
    child.close()
    return pid, parent


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    import sys

    words = list(sys.argv[1:] if argv is None else argv)
    forked = _fork_worker() if _wants_worker(words) else None
    from dwellir_harvester.lib._prefork import Prestarted

    from ._main import main as run

    return run(words, prestarted=Prestarted(*forked) if forked else None)


def console() -> NoReturn:
    """The ``dwellir-harvester`` program: ``main()``, then exit without tearing the interpreter down.

    A one-shot command would spend about 10 ms (a tenth of a ``collect``) freeing every module
    and object it made, for a process that is about to end. Everything an exit must do is still
    done: the ``atexit`` handlers run (``logging``'s flush among them; every thread the harvester
    starts is a daemon thread, which an exit never waits for), then the standard streams are
    flushed, and a stream that cannot be flushed (the reader went away) makes the status 120, as
    Python's own exit does.
    """
    import atexit
    import os
    import sys

    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, or a stream closed by the code that ran
            code = code or 120
    os._exit(code)


def daemon_main(argv: Sequence[str] | None = None) -> int:
    """``dwellir-harvester-daemon``: the same as ``dwellir-harvester serve``."""
    from ._main import daemon_main as run

    return run(argv)


def build_parser() -> argparse.ArgumentParser:
    """The command line's argument parser."""
    from ._main import build_parser as build

    return build()

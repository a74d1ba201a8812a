"""A worker started before the harvester's own imports, so that both get going at once.

A one-shot command (``dwellir-harvester collect``) spends most of its time starting: its own imports,
then the worker's discovery. Forked first thing, the worker imports the SDK and warms up (the
entry-point scan and the built-in collector modules of the distribution it is told) while the
command imports the rest of itself; the ``WorkerPool`` then adopts it for the harvester's own
interpreter. This module imports only what forking needs.
"""

from __future__ import annotations

import os
import socket


class Prestarted:
    """A forked worker waiting to be adopted: its pid and the harvester's end of its socket.

    Whoever ``adopt()``s it owns the process from then on; ``discard()`` ends one nobody adopted.
    """

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid, self.sock = pid, sock
        self.adopted = False

    def adopt(self) -> tuple[int, socket.socket]:
        """Take the worker over: its pid and socket are the caller's to talk to, end and reap."""
        self.adopted = True
        return self.pid, self.sock

    def discard(self) -> None:
        """End the worker unless it was adopted: closing its socket ends it; then reap it."""
        if self.adopted:
            return
        self.adopted = True
        self.sock.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def prefork(warm_distribution: str | None = None) -> Prestarted | None:
    """Fork a worker now (None where the platform cannot fork).

    Call it while the process runs a single thread. ``warm_distribution`` is the distribution whose
    entry points the worker imports while it waits (the caller's own built-ins, never a third
    party's: an import that hangs must be met under a timeout, in discovery).
    """
    if not hasattr(os, "fork"):
        return None
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: become a worker and never return to the caller's code
        code = 70
        try:
            parent.close()
            os.setsid()
            os.environ["MALLOC_ARENA_MAX"] = "2"
            from . import worker

            code = worker.serve(child.detach(), None, 0, "WARNING", warm_distribution=warm_distribution)
        except BaseException:  # noqa: BLE001 - nothing of the caller's may run in the child
            pass
        finally:
            os._exit(code)
    child.close()
    return Prestarted(pid, parent)

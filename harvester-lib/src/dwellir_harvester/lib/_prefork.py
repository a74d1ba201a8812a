"""A worker started before the harvester's own imports, so that both get going at once.

A one-shot command (``dwellir-harvester collect``) spends most of its time starting: its own imports,
then the worker's discovery. Forked first thing (before the command imports this SDK: the parent
needs only ``os`` and ``socket`` for it, and the child calls ``worker.become_worker``), the worker
imports the SDK and warms up (the entry-point scan and the built-in collector modules of the
distribution it is told) while the command imports the rest of itself; the ``WorkerPool`` then
adopts it, as a ``Prestarted``, for the harvester's own interpreter.
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

"""Writing files so that a reader never sees half of one.

::

    from dwellir_harvester.lib.files import write_atomic

    write_atomic(path, json.dumps(document).encode(), mode=0o644)

The runner (its output file), the daemon and the charm helpers (drop-ins, snapshots, action results)
all write through this one function.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["sync_dir", "write_atomic"]


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, group: int | None = None) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory, fsync, rename.

    A reader sees the old content or the new, never a mix. The temporary file gets ``mode`` (and
    ``group``, a gid) before any byte is written, so no copy is ever readable by more users than the
    final file; it is named ``.<name>.<random>.tmp``, so a reader that globs ``*.yaml`` or ``*.json``
    never picks it up, and it is removed when anything fails (the error, an ``OSError``, propagates).
    The directory is synced too, so the new file survives a crash once this returns.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        if group is not None:
            os.fchown(fd, -1, group)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    sync_dir(target.parent)


def sync_dir(directory: str | os.PathLike[str]) -> None:
    """fsync a directory, so that a rename or unlink in it is durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

"""Writing files so that a reader (the harvester, another hook) never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory, fsync, rename.

    The temporary file is named ``.<name>.<random>.tmp`` so that no reader that globs ``*.yaml`` or
    ``*.json`` ever picks it up; it is removed when anything fails. The directory is synced too, so
    the new file survives a crash once this returns.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_bytes(path: Path) -> bytes | None:
    """The file's content, or None when it does not exist (or is not a readable file)."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def ensure_mode(path: Path, mode: int) -> None:
    """Give an existing file ``mode`` unless it has it already (no write, no new inode)."""
    if (path.stat().st_mode & 0o7777) != mode:
        os.chmod(path, mode)


def remove(path: Path) -> bool:
    """Remove ``path``; True when it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _sync_dir(path.parent)
    return True


def make_dir(directory: Path, mode: int = 0o755) -> None:
    """Create ``directory`` (and its parents) when missing; an existing one keeps its mode."""
    directory.mkdir(mode=mode, parents=True, exist_ok=True)

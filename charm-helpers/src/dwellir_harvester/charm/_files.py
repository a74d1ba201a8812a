"""Writing files so that a reader (the harvester, another hook) never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path

from dwellir_harvester.lib.files import sync_dir, write_atomic

__all__ = ["ensure_mode", "make_dir", "read_bytes", "remove", "write_atomic"]


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
    sync_dir(path.parent)
    return True


def make_dir(directory: Path, mode: int = 0o755) -> None:
    """Create ``directory`` (and its parents) when missing; an existing one keeps its mode."""
    directory.mkdir(mode=mode, parents=True, exist_ok=True)

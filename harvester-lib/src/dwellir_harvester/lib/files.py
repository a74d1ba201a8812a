"""Writing files so that a reader never sees half of one.

::

    from dwellir_harvester.lib.files import write_atomic

    write_atomic(path, json.dumps(document).encode(), mode=0o644)

The runner (its output file), the daemon and the charm helpers (drop-ins, snapshots, action results)
all write through this one function. ``unsafe_reason`` and ``untrusted_reason`` say why a file that
the harvester would trust (a plugin, a token file) could be changed by another user.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["sync_dir", "unsafe_reason", "untrusted_reason", "write_atomic"]


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
    """Call fsync on a directory, so that a rename or unlink in it is durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def unsafe_reason(path: str | os.PathLike[str]) -> str | None:
    """Why trusting ``path`` (code to import, a token file) would let another user act as us; None if safe.

    Like ssh's StrictModes: refused when writable by every user, writable by a group that is not
    the owner's private group, or owned by someone other than root or the current user. The path
    itself is checked, not the directories above it: see ``untrusted_reason``.
    """
    if os.name != "posix":
        return None
    st = os.stat(path)
    if st.st_mode & stat.S_IWOTH:
        return f"is writable by every user (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {st.st_uid}, not by root or the user running the harvester"
    if st.st_mode & stat.S_IWGRP and not _is_private_group(st.st_uid, st.st_gid):
        return f"is writable by group {st.st_gid} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _is_private_group(uid: int, gid: int) -> bool:
    import grp
    import pwd

    try:
        owner = pwd.getpwuid(uid).pw_name
        group = grp.getgrgid(gid)
    except KeyError:
        return False
    return group.gr_name == owner and all(member == owner for member in group.gr_mem)


def untrusted_reason(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` or a directory above it lets another user replace what ``path`` holds; None if safe.

    ``path`` must pass ``unsafe_reason``; each directory above it must too, except that a directory
    with the sticky bit (``/tmp``) is accepted, because there only a file's owner may rename or
    remove it.
    """
    target = os.path.abspath(path)
    reason = unsafe_reason(target)
    if reason:
        return f"{target} {reason}"
    directory = os.path.dirname(target)
    while True:
        st = os.stat(directory)
        if not st.st_mode & stat.S_ISVTX:
            reason = unsafe_reason(directory)
            if reason:
                return f"its directory {directory} {reason}"
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent

"""Writing files so that a reader never sees half of one.

::

    from dwellir_harvester.lib.files import write_atomic

    write_atomic(path, json.dumps(document).encode(), mode=0o644)

The runner (its output file), the daemon and the charm helpers (drop-ins, snapshots, action results)
all write through this one function. ``write_if_changed`` writes only when the content differs (so a
file that did not change keeps its inode and mtime), ``read_bytes`` reads a small regular file or
says why not, and ``remove`` takes a file away durably. ``unsafe_reason`` and ``untrusted_reason``
say why a file that the harvester would trust (a plugin, a token file) could be changed by another
user.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = [
    "READ_LIMIT",
    "read_bytes",
    "remove",
    "sync_dir",
    "unsafe_reason",
    "untrusted_reason",
    "write_atomic",
    "write_if_changed",
]

#: The most bytes ``read_bytes`` reads by default (16 MiB): config files, snapshots, token files.
READ_LIMIT = 16 * 1024 * 1024


def write_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, group: int | None = None) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory, fsync, rename.

    A reader sees the old content or the new, never a mix. The temporary file gets ``mode`` (and
    ``group``, a gid) before any byte is written, so no copy is ever readable by more users than the
    final file; it is named ``.<name>.<random>.tmp``, so a reader that globs ``*.yaml`` or ``*.json``
    never picks it up, and it is removed when anything fails (the error, an ``OSError``, propagates).
    The directory is synced too, so the new file survives a crash once this returns.
    """
    target = Path(path)
    import tempfile  # here: it brings shutil and the compression modules, which reading commands never need

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


def read_bytes(path: str | os.PathLike[str], limit: int = READ_LIMIT) -> bytes | None:
    """Return the content of the regular file ``path``, or None when there is no such file.

    A device is refused without being opened (opening some has side effects); the file is then
    opened without blocking and checked again on the open descriptor, so a FIFO, a device or a
    directory swapped in meanwhile is refused rather than read (or waited on), and a file is never
    read past ``limit`` bytes, even one that grows while it is read.

    Args:
        path: the file; a symbolic link is followed.
        limit: the most bytes accepted.

    Returns:
        The content, or None when ``path`` or a directory above it does not exist.

    Raises:
        ValueError: ``path`` is not a regular file, or holds more than ``limit`` bytes; the message
            names the path and the reason on one line.
        OSError: the file cannot be opened or read (``PermissionError``, say).
    """
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise ValueError(f"{os.fspath(path)} is {_kind(before.st_mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{os.fspath(path)} is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{os.fspath(path)} holds {st.st_size} bytes, more than the limit of {limit}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise ValueError(f"{os.fspath(path)} holds more than the limit of {limit} bytes")
    return data


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def write_if_changed(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, group: int | None = None) -> bool:
    """Make ``path`` hold ``data`` with ``mode`` (and ``group``), writing only when the content differs.

    A file that already holds ``data`` is not rewritten (its inode and mtime stay, so nothing that
    watches it wakes up); only its mode and group are corrected when they differ, narrowing the
    permissions before the group changes, so the file is never readable by more users than either
    the old or the new settings allow. Otherwise ``data`` is written with ``write_atomic``. Missing
    parent directories are created (mode 0755).

    Args:
        path: the file to write.
        data: its new content.
        mode: its permission bits, e.g. ``0o640``.
        group: its group (a gid); None keeps the group a new file gets, or an existing file has.

    Returns:
        True when the content was written, False when it was already there.

    Raises:
        OSError: the file cannot be read, written or changed (the error names the path).
    """
    target = Path(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == len(data) and _holds(target, data):
        current = stat.S_IMODE(st.st_mode)
        if group is not None and st.st_gid != group:
            if current & ~mode:
                os.chmod(target, current & mode)
            os.chown(target, -1, group)
            current = stat.S_IMODE(os.stat(target).st_mode)
        if current != mode:
            os.chmod(target, mode)
        return False
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_atomic(target, data, mode, group)
    return True


def _holds(path: Path, data: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(data) + 1) == data


def remove(path: str | os.PathLike[str]) -> bool:
    """Remove the file ``path`` and sync its directory, so the removal survives a crash.

    Args:
        path: the file (a symbolic link is removed, not its target).

    Returns:
        True when it existed, False when there was nothing to remove.

    Raises:
        OSError: it cannot be removed (a directory, or no permission).
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    sync_dir(os.path.dirname(os.path.abspath(path)))
    return True

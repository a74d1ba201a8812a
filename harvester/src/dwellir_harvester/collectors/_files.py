"""Reading the small files collectors report on (agent.conf, snapshots) without trusting them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dwellir_harvester.lib import CollectorFailedError
from dwellir_harvester.lib.files import read_bytes

MAX_FILE_BYTES = 1024 * 1024


class FileProblem(Exception):  # noqa: N818 - a problem with a file, reported as the entry's message
    """A file a collector cannot use; the message says why, never what the file holds."""


def read_small_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file (``lib.files.read_bytes``: never a FIFO or a device, never past ``limit``).

    Raises:
        FileProblem: it cannot be read, is not a regular file, or is larger than ``limit``.
    """
    try:
        raw = read_bytes(path, limit)
    except ValueError as err:  # its message starts with the path, which the collector names itself
        raise FileProblem(str(err).removeprefix(str(path)).strip()) from None
    except OSError as err:
        raise FileProblem(f"cannot read it: {(err.strerror or type(err).__name__).lower()}") from None
    if raw is None:
        raise FileProblem("cannot read it: no such file or directory")
    return raw


def directory_option(value: Any, option: str) -> Path:
    """An option naming a directory, as a path; ``ValueError`` naming the option when it is not one."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"{option} must be a directory path, not {value!r}")
    return Path(value)


def list_dir(directory: Path, option: str) -> list[os.DirEntry[str]]:
    """The entries of the directory an option names, in name order; none when it does not exist.

    Any other problem (not a directory, not readable) is ``CollectorFailedError`` naming the option.
    """
    try:
        with os.scandir(directory) as listing:
            return sorted(listing, key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise CollectorFailedError(f"{option} {directory} is not a directory") from None
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise CollectorFailedError(f"cannot list {option} {directory}: {reason}") from None

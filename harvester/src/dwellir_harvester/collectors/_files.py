"""Reading the small files collectors report on (agent.conf, snapshots) without trusting them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dwellir_harvester.lib import CollectorFailedError

MAX_FILE_BYTES = 1024 * 1024


class FileProblem(Exception):  # noqa: N818 - a problem with a file, reported as the entry's message
    """A file a collector cannot use; the message says why, never what the file holds."""


def read_small_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, or ``FileProblem`` when it cannot be read or is larger than ``limit``."""
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as err:
        raise FileProblem(f"cannot read it: {(err.strerror or type(err).__name__).lower()}") from None
    if len(raw) > limit:
        raise FileProblem(f"larger than {limit} bytes")
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

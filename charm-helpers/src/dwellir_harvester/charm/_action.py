"""The ``run-collectors`` action: parameters, the live ``juju-charm`` collector, and Juju-safe results."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from dwellir_harvester.lib import CollectorSpec, GenericCollector, files

from ._version import __version__

JUJU_CHARM = "juju-charm"
HOST = "host"

#: Linux's MAX_ARG_STRLEN: one argument of ``action-set`` ("key=value" and its NUL) must fit in it.
MAX_ARG_BYTES = 131072
#: How many result files of one unit are kept in the results dir (the newest ones).
KEEP_RESULT_FILES = 5

_SPLIT = re.compile(r"[\s,]+")


class ActionInputError(ValueError):
    """A parameter the action cannot run with; its message is the action's one-line failure."""


class Request(NamedTuple):
    """The action's parameters, checked. ``names`` is None for the default selection."""

    names: tuple[str, ...] | None
    validate: bool
    timeout: float | None


def parse_params(params: Mapping[str, Any]) -> Request:
    """Check and convert ``collectors``, ``validate`` and ``timeout`` (Juju has applied defaults)."""
    raw = params.get("collectors", "")
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ActionInputError(f"collectors must be a string of names separated by spaces or commas, not {raw!r}")
    names = tuple(dict.fromkeys(name for name in _SPLIT.split(raw) if name))
    validate = params.get("validate", True)
    if not isinstance(validate, bool):
        raise ActionInputError(f"validate must be true or false, not {validate!r}")
    timeout = params.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ActionInputError(f"timeout must be a number of seconds, not {timeout!r}")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ActionInputError(f"timeout must be a positive number of seconds, not {timeout:g}")
        timeout = float(timeout)
    return Request(names or None, validate, timeout)


def live_charm_spec(app: str, snapshot: Mapping[str, Any]) -> CollectorSpec:
    """A ``juju-charm`` collector that reports this charm's context as the hook sees it now.

    Its data has the shape of the runner's built-in ``juju-charm`` collector, limited to this
    application: ``{"applications": {app: <snapshot without "format">}}``.
    """
    data = {"applications": {app: {k: v for k, v in snapshot.items() if k != "format"}}}

    class JujuCharmCollector(GenericCollector):
        """The charm's own Juju context (topology, redacted config, relations without data)."""

        NAME: ClassVar[str] = JUJU_CHARM
        VERSION: ClassVar[str] = __version__
        TIMEOUT: ClassVar[float] = 5.0

        def collect(self) -> dict[str, Any]:
            copy: dict[str, Any] = json.loads(json.dumps(data))  # the caller cannot change it under us
            return copy

    return CollectorSpec(JUJU_CHARM, JujuCharmCollector, "charm", f"charm:{app}")


def one_line(text: str) -> str:
    """``text`` on one line: Juju shows a failure message as one."""
    return " ".join(str(text).split())


def fits_in_result(key: str, value: str) -> bool:
    """Whether ``action-set key=value`` stays within one argument's limit (MAX_ARG_STRLEN)."""
    return len(f"{key}={value}".encode()) + 1 <= MAX_ARG_BYTES


def write_result_file(directory: Path, unit: str, text: str) -> Path:
    """Write a document too large for the results to ``directory`` (0700) as a 0600 file.

    The file is named after the unit and the time; older files of the same unit beyond the newest
    ``KEEP_RESULT_FILES`` are removed.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o7777 != 0o700:
        os.chmod(directory, 0o700)
    prefix = unit.replace("/", "-") + "."
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / f"{prefix}{stamp}.json"
    files.write_atomic(path, text.encode("utf-8"), 0o600)
    prune_result_files(directory, unit, keep=KEEP_RESULT_FILES)
    return path


def result_files(directory: Path, unit: str) -> list[Path]:
    """This unit's result files, oldest first."""
    prefix = unit.replace("/", "-") + "."
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    return sorted(p for p in entries if p.name.startswith(prefix) and p.suffix == ".json")


def prune_result_files(directory: Path, unit: str, keep: int) -> None:
    found = result_files(directory, unit)
    for old in found[: max(0, len(found) - keep)]:
        files.remove(old)


def default_selection(own: Sequence[str], available: Sequence[str]) -> list[str]:
    """``host`` (when discoverable), the charm's collectors, then the live ``juju-charm``."""
    names = [HOST] if HOST in available else []
    names.extend(own)
    names.append(JUJU_CHARM)
    return list(dict.fromkeys(names))

"""The hardened systemd unit of the daemon, rendered for a given command, user and environment."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_EXECUTABLE = "/opt/dwellir-harvester/venv/bin/dwellir-harvester"
DEFAULT_USER = "dwellir-harvester"
_WORD = re.compile(r"^[A-Za-z0-9_./:=+@-]+$")  # nothing systemd would split, quote or expand


def systemd_unit(
    executable: str | Sequence[str] = DEFAULT_EXECUTABLE,
    user: str = DEFAULT_USER,
    environment: Mapping[str, str] | None = None,
) -> str:
    """The unit file text: ``Type=simple``, a dedicated user, ``ExecReload`` sending SIGHUP, hardening.

    ``executable`` is the ``dwellir-harvester`` command: a path, or an argv prefix such as
    ``["/usr/bin/python3", "-m", "dwellir_harvester.cli"]`` (with ``environment={"PYTHONPATH": …}``
    for a charm's venv). Values are refused when systemd would split, quote or expand them.
    """
    argv = [executable] if isinstance(executable, str) else list(executable)
    if not argv or not argv[0].startswith("/") or not all(_WORD.match(a) for a in argv):
        raise ValueError(f"executable must be an absolute path (and plain arguments), not {executable!r}")
    if not re.match(r"^[a-z_][a-z0-9_-]*$", user):
        raise ValueError(f"user must be a plain user name, not {user!r}")
    env = dict(environment or {})
    for key, value in env.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) or not _WORD.match(value):
            raise ValueError(f"environment {key}={value!r} must be a plain name and value")
    template = Path(__file__).with_name("dwellir-harvester.service.in").read_text(encoding="utf-8")
    lines = "".join(f"Environment={key}={value}\n" for key, value in sorted(env.items()))
    return template.format(executable=" ".join(argv), user=user, environment=lines)

"""The hardened systemd unit of the daemon, rendered for a given executable and user."""

from __future__ import annotations

from pathlib import Path

DEFAULT_EXECUTABLE = "/opt/dwellir-harvester/venv/bin/dwellir-harvester"
DEFAULT_USER = "dwellir-harvester"


def systemd_unit(executable: str = DEFAULT_EXECUTABLE, user: str = DEFAULT_USER) -> str:
    """The unit file text: ``Type=simple``, a dedicated user, ``ExecReload`` sending SIGHUP, hardening."""
    if not executable.startswith("/") or any(c.isspace() for c in executable):
        raise ValueError(f"executable must be an absolute path without spaces, not {executable!r}")
    if not user or not all(c.isalnum() or c in "-_" for c in user):
        raise ValueError(f"user must be a plain user name, not {user!r}")
    template = Path(__file__).with_name("dwellir-harvester.service.in").read_text(encoding="utf-8")
    return template.format(executable=executable, user=user)

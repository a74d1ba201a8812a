"""The one exception of the config layer."""

from __future__ import annotations


class ConfigError(Exception):
    """A config problem, with the file and key it is about when there is one."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file, self.key, self.message = file, key, message
        where = ": ".join(part for part in (file, f"key {key!r}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)

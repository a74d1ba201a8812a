"""The one exception of the config layer."""

from __future__ import annotations

from dwellir_harvester.lib.limits import MAX_MESSAGE, one_line
from dwellir_harvester.lib.redact import redact_url


def _shown(text: str, limit: int) -> str:
    # Credentials in a URL (a key or a name that was meant to be a value) are never shown.
    return one_line(redact_url(text[: 4 * limit]), limit)


class ConfigError(Exception):
    """A config problem, with the file and key it is about when there is one.

    Its text is always one line of at most ``lib.limits.MAX_MESSAGE`` characters, however long the
    key or message it was given (a key is shown up to 200 characters), and URL credentials in the
    key or the message are redacted.

    Args:
        message: what is wrong, and what to do about it.
        file: the file (or the flag, or the variable) the problem is in.
        key: the key path in that file (``collector_options.peers.rpc_url``).
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file, self.key, self.message = file, _shown(key, 200) if key else key, _shown(message, MAX_MESSAGE)
        where = ": ".join(part for part in (file, f"key {self.key!r}" if self.key else None) if part)
        super().__init__(one_line(f"{where}: {self.message}" if where else self.message, MAX_MESSAGE))
